package endpoint_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// flip replaces the base64url character at i with another one, so the
// decoded bytes change.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// firstToken fills an env and returns it with the next_token of the first
// page of the default list.
func firstToken(t *testing.T, op listOp) (*env, string) {
	t.Helper()
	v := envFor(t, op)
	fill(t, v, op)
	_, next, err := op.call(v, listReq{maxResults: 10})
	if err != nil || next == "" {
		t.Fatalf("first page: token %q, %v", next, err)
	}
	return v, next
}

func TestTamperedTokensAreRejected(t *testing.T) {
	op := listOps[1] // benchmark jobs: every filter applies
	v, tok := firstToken(t, op)
	dot := strings.IndexByte(tok, '.')
	if dot <= 0 || dot == len(tok)-1 {
		t.Fatalf("token %q is not payload.signature", tok)
	}
	// The same filters on a cluster with another page key.
	other := newEnvKey(t, []byte("another key"))
	other.mustCreateConfig(configReq("wl"))
	for _, n := range []string{"a", "b", "c"} {
		other.mustCreateBench(benchReq(n))
	}
	_, foreign, err := op.call(other, listReq{maxResults: 1})
	if err != nil || foreign == "" {
		t.Fatalf("foreign token %q, %v", foreign, err)
	}

	bad := invalid("next_token", "is not a token this cluster issued")
	for name, tampered := range map[string]string{
		"payload byte":        flip(tok, 0),
		"payload middle byte": flip(tok, dot/2),
		"signature byte":      flip(tok, dot+1),
		"longer signature":    tok + "AAAA",
		"no separator":        strings.Replace(tok, ".", "", 1),
		"empty payload":       tok[dot:],
		"not base64":          "@@@@." + tok[dot+1:],
		"garbage":             "hello",
		"other cluster":       foreign,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := op.call(v, listReq{maxResults: 10, token: tampered})
			checkErr(t, err, bad)
		})
	}
}

func TestTokenIsBoundToItsFilters(t *testing.T) {
	op := listOps[1]
	v, tok := firstToken(t, op)
	differ := invalid("next_token", "different filters or sort order")
	for name, q := range map[string]listReq{
		"sort_order":          {sortOrder: "Ascending"},
		"sort_by":             {sortBy: "Name"},
		"name_contains":       {nameContains: "res"},
		"status_equals":       {status: state.StatusInProgress},
		"creation_time_after": {after: at(-3600)},
	} {
		t.Run(name, func(t *testing.T) {
			q.token, q.maxResults = tok, 10
			_, _, err := op.call(v, q)
			checkErr(t, err, differ)
		})
	}
	t.Run("other account", func(t *testing.T) {
		_, _, err := op.call(v.as(otherAccount), listReq{token: tok})
		checkErr(t, err, differ)
	})
	// Spelling out the defaults and changing the page size are fine.
	names, next, err := op.call(v, listReq{sortBy: "CreationTime", sortOrder: "Descending", maxResults: 20, token: tok})
	if err != nil || len(names) != 15 || next != "" {
		t.Fatalf("continue with explicit defaults: %d names, token %q, %v", len(names), next, err)
	}
}

func TestTokenSurvivesChangesBetweenPages(t *testing.T) {
	op := listOps[0]
	v := envFor(t, op)
	items := fill(t, v, op)
	order := expected(items, "CreationTime", "Descending")
	q := listReq{sortBy: "CreationTime", sortOrder: "Descending", maxResults: 10}
	first, next, err := op.call(v, q)
	if err != nil || strings.Join(first, " ") != strings.Join(order[:10], " ") {
		t.Fatalf("first page %v, %v", first, err)
	}
	del := func(name string) {
		if _, err := v.e.DeleteAIWorkloadConfig(v.ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: name}); err != nil {
			t.Fatal(err)
		}
	}
	del(order[9])  // the cursor's own row
	del(order[12]) // a row not yet listed
	v.b.clock.now = t0.Add(time.Hour)
	op.create(v, "newest") // sorts before the cursor: not listed
	v.b.clock.now = t0.Add(-time.Hour)
	op.create(v, "oldest") // sorts after everything: listed last
	q.token = next
	rest, _ := pageAll(t, v, op, q)
	want := append(append(append([]string(nil), order[10:12]...), order[13:]...), "oldest")
	if strings.Join(rest, " ") != strings.Join(want, " ") {
		t.Fatalf("after changes\n got %v\nwant %v", rest, want)
	}
}

func TestListWithoutPageKey(t *testing.T) {
	v := newEnvKey(t, nil) // no cluster meta yet: no page key
	for i := 0; i < 10; i++ {
		v.mustCreateConfig(configReq("cfg-" + string(rune('a'+i))))
	}
	if names, next, err := listOps[0].call(v, listReq{}); err != nil || len(names) != 10 || next != "" {
		t.Fatalf("one full page: %d names, %q, %v", len(names), next, err)
	}
	v.mustCreateConfig(configReq("cfg-z"))
	_, _, err := listOps[0].call(v, listReq{})
	checkErr(t, err, want{code: codes.Unavailable, reason: "ServiceUnavailable", rule: "page token key"})
	_, _, err = listOps[0].call(v, listReq{token: "x.y"})
	checkErr(t, err, invalid("next_token", "is not a token this cluster issued"))
}
