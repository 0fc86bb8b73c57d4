package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestBundleResolvesEachDistinctRefOnceAndWipes(t *testing.T) {
	t.Parallel()
	s, url := fake(t, "job/hf", "job/api")
	c := admin(url)
	hf := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("job/hf"), SecretString: aws.String(planted)})
	api := create(t, c, &secretsmanager.CreateSecretInput{Name: aws.String("job/api"), SecretBinary: []byte("api-" + planted)})
	s.ResetCalls()

	refs := map[string]string{"hf_token": hf, "hf_token_again": hf, "api_key": api, "api_key_partial": api[:len(api)-7]}
	b, err := ResolveBundle(context.Background(), resolver(t, url), refs)
	if err != nil {
		t.Fatal(err)
	}
	// Three distinct references (the partial ARN is a different string).
	if n := s.Calls("GetSecretValue"); n != 3 {
		t.Fatalf("GetSecretValue calls = %d, want 3", n)
	}
	if len(b) != 4 || string(b.Get("hf_token").Reveal()) != planted || string(b.Get("hf_token_again").Reveal()) != planted ||
		string(b.Get("api_key").Reveal()) != "api-"+planted || string(b.Get("api_key_partial").Reveal()) != "api-"+planted {
		t.Fatalf("bundle has %d values", len(b))
	}
	if b.Get("hf_token") == b.Get("hf_token_again") {
		t.Fatal("parameters sharing a reference share a Value")
	}
	if b.Get("missing") != nil {
		t.Fatal("Get(missing) != nil")
	}

	out := fmt.Sprintf("%v %+v %#v %s", b, b, b, b)
	j, _ := json.Marshal(struct{ Secrets Bundle }{b})
	if leaks(out) || leaks(string(j)) || !strings.Contains(string(j), `"hf_token":"[REDACTED]"`) {
		t.Fatalf("bundle leaked: %s %s", out, j)
	}

	var revealed [][]byte
	for _, v := range b {
		revealed = append(revealed, v.Reveal())
	}
	b.Wipe()
	for _, r := range revealed {
		if !bytes.Equal(r, make([]byte, len(r))) {
			t.Fatalf("Wipe left %q", r)
		}
	}
	for p, v := range b {
		if !v.Wiped() {
			t.Fatalf("%s not wiped", p)
		}
	}
}

// countingResolver hands out values for references and remembers them.
type countingResolver struct {
	mu     sync.Mutex
	calls  map[string]int
	issued []*Value
	fail   map[string]error
}

func (c *countingResolver) Resolve(_ context.Context, ref Ref) (*Value, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[ref.String()]++
	if err := c.fail[ref.String()]; err != nil {
		return nil, err
	}
	v := NewValue([]byte(planted + ref.Name))
	c.issued = append(c.issued, v)
	return v, nil
}

func TestBundleFailureWipesAndNamesTheParameter(t *testing.T) {
	t.Parallel()
	bad := "perfleet:secret/zz-missing"
	r := &countingResolver{fail: map[string]error{bad: &ResolveError{Ref: bad, Err: errors.New("no such secret"), class: ErrNotFound}}}
	refs := map[string]string{"a": "perfleet:secret/a", "b": "perfleet:secret/b", "c": bad}
	b, err := ResolveBundle(context.Background(), r, refs)
	if b != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("ResolveBundle = %v, %v", b, err)
	}
	var re *ResolveError
	if !errors.As(err, &re) || re.Param != "c" || re.Ref != bad || !strings.Contains(err.Error(), "c ("+bad+")") {
		t.Fatalf("error = %v", err)
	}
	if len(r.issued) != 2 {
		t.Fatalf("issued %d values", len(r.issued))
	}
	for _, v := range r.issued {
		if !v.Wiped() {
			t.Fatal("a value resolved before the failure was not wiped")
		}
	}

	// A plain error from a resolver gets the parameter and reference too.
	r = &countingResolver{fail: map[string]error{bad: errors.New("boom")}}
	_, err = ResolveBundle(context.Background(), r, map[string]string{"c": bad})
	if !errors.As(err, &re) || re.Param != "c" || re.Ref != bad || re.Err.Error() != "boom" {
		t.Fatalf("error = %v", err)
	}
}

func TestBundleRejectsInvalidRefsBeforeFetching(t *testing.T) {
	t.Parallel()
	r := &countingResolver{}
	_, err := ResolveBundle(context.Background(), r, map[string]string{"a": "perfleet:secret/a", "hf_token": planted})
	var re *ResolveError
	if !errors.Is(err, ErrInvalidRef) || !errors.As(err, &re) || re.Param != "hf_token" || leaks(err.Error()) {
		t.Fatalf("error = %v", err)
	}
	if len(r.calls) != 0 {
		t.Fatalf("fetched %v before validating", r.calls)
	}
}

func TestBundleEmptyAndCancelled(t *testing.T) {
	t.Parallel()
	b, err := ResolveBundle(context.Background(), &countingResolver{}, nil)
	if err != nil || len(b) != 0 {
		t.Fatalf("empty: %v, %v", b, err)
	}
	b.Wipe()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &countingResolver{}
	_, err = ResolveBundle(ctx, r, map[string]string{"a": "perfleet:secret/a"})
	if !errors.Is(err, context.Canceled) || len(r.calls) != 0 {
		t.Fatalf("cancelled: %v after %v", err, r.calls)
	}
}

// A nil value without an error is a resolver bug; it must not become a
// nil entry that panics later.
func TestBundleNilValue(t *testing.T) {
	t.Parallel()
	r := ResolverFunc(func(context.Context, Ref) (*Value, error) { return nil, nil })
	_, err := ResolveBundle(context.Background(), r, map[string]string{"a": "perfleet:secret/a"})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("nil value: %v", err)
	}
}
