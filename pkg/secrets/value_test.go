package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

const planted = "hf_PLANTEDsecretVALUE0123456789"

// leaks reports whether s shows the planted secret in any common encoding.
func leaks(s string) bool {
	p := []byte(planted)
	for _, enc := range []string{
		planted,
		hex.EncodeToString(p),
		strings.ToUpper(hex.EncodeToString(p)),
		base64.StdEncoding.EncodeToString(p),
		fmt.Sprint(p),     // [104 102 ...]
		fmt.Sprint(p[:8]), // a prefix is enough to leak
		planted[:12],
	} {
		if strings.Contains(s, strings.TrimSuffix(enc, "]")) {
			return true
		}
	}
	return false
}

func TestValueNeverPrintsTheSecret(t *testing.T) {
	v := NewValue([]byte(planted))
	type holder struct {
		Name   string
		Secret *Value
		Inline Value
		Map    map[string]*Value
	}
	h := holder{Name: "hf_token", Secret: v, Inline: *v, Map: map[string]*Value{"api_key": v}}
	outs := []string{
		fmt.Sprintf("%v %+v %#v %s", v, v, v, v),
		fmt.Sprintf("%v %+v %#v %s", *v, *v, *v, *v),
		fmt.Sprintf("%q %x %X %d %v %T", v, v, v, v, []any{v}, v),
		fmt.Sprintf("%v %+v %#v", h, h, h),
		fmt.Sprintf("%v %+v %#v", &h, &h, &h),
		fmt.Sprint(v) + fmt.Sprintln(v) + v.String() + v.GoString(),
		fmt.Errorf("wrapped: %v", v).Error(),
	}
	for _, x := range []any{h, &h, v, *v, Bundle{"hf_token": v}} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
		b, _ = json.MarshalIndent(x, "", " ")
		outs = append(outs, string(b))
	}
	txt, _ := v.MarshalText()
	outs = append(outs, string(txt))

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("resolved", "value", v, "holder", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("resolved", "value", v, "inline", *v, "holder", &h)
	outs = append(outs, logs.String())

	for _, o := range outs {
		if leaks(o) {
			t.Errorf("secret leaked: %s", o)
		}
		if !strings.Contains(o, Redacted) {
			t.Errorf("output does not show %s: %s", Redacted, o)
		}
	}
	var obj struct{ Secret string }
	b, _ := json.Marshal(struct{ Secret *Value }{v})
	if err := json.Unmarshal(b, &obj); err != nil || obj.Secret != Redacted {
		t.Fatalf("JSON = %s", b)
	}
	if string(v.Reveal()) != planted {
		t.Fatal("Reveal does not return the secret")
	}
}

func TestValueWipe(t *testing.T) {
	b := []byte(planted)
	v := NewValue(b)
	cp := *v // copies share the bytes
	clone := v.Clone()
	if v.Len() != len(planted) || v.Wiped() {
		t.Fatal("fresh value reports wiped")
	}
	revealed := v.Reveal()
	v.Wipe()
	if !bytes.Equal(b, make([]byte, len(planted))) || !bytes.Equal(revealed, make([]byte, len(planted))) {
		t.Fatalf("Wipe left bytes: %q", b)
	}
	if v.Reveal() != nil || cp.Reveal() != nil || !v.Wiped() || v.Len() != 0 {
		t.Fatal("wiped value still reveals bytes")
	}
	if string(clone.Reveal()) != planted {
		t.Fatal("Wipe reached an independent clone")
	}
	v.Wipe() // idempotent
	var zero Value
	zero.Wipe()
	var nilV *Value
	nilV.Wipe()
	if nilV.Reveal() != nil || zero.Reveal() != nil || !v.Clone().Wiped() {
		t.Fatal("zero, nil or wiped values reveal bytes")
	}
}

func TestValueConcurrentWipe(t *testing.T) {
	v := NewValue([]byte(planted))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_ = v.Len()
			v.Wipe()
		})
	}
	wg.Wait()
	if !v.Wiped() {
		t.Fatal("not wiped")
	}
}

func TestResolveErrorMessage(t *testing.T) {
	e := &ResolveError{Param: "hf_token", Ref: "perfleet:secret/hf", Err: errors.New("boom"), class: ErrNotFound}
	if got := e.Error(); got != "resolving secret hf_token (perfleet:secret/hf): boom" {
		t.Fatalf("Error() = %q", got)
	}
	if !errors.Is(e, ErrNotFound) || errors.Is(e, ErrAccessDenied) {
		t.Fatal("class not matched")
	}
	e = &ResolveError{Ref: "perfleet:secret/hf", class: ErrEmpty}
	if got := e.Error(); got != "resolving secret perfleet:secret/hf: "+ErrEmpty.Error() {
		t.Fatalf("Error() = %q", got)
	}
}
