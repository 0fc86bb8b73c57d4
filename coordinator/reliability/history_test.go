package reliability

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func op(client int, in Input, out Output, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestModelAcceptsLinearizableAndRefusesStaleHistories(t *testing.T) {
	create := Input{Kind: Create, Name: "a"}
	describe := Input{Kind: Describe, Name: "a"}
	del := Input{Kind: Delete, Name: "a"}
	list := Input{Kind: List, Names: []string{"a", "b"}}
	cases := []struct {
		name string
		h    []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"create then read", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, describe, Output{Outcome: OK}, 20, 30),
		}, porcupine.Ok},
		{"stale read after an acknowledged create", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, describe, Output{Outcome: NotFound}, 20, 30),
		}, porcupine.Illegal},
		{"concurrent read may miss the create", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 30),
			op(1, describe, Output{Outcome: NotFound}, 10, 20),
		}, porcupine.Ok},
		{"two creates of one name both acknowledged", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, create, Output{Outcome: OK}, 5, 15),
		}, porcupine.Illegal},
		{"lost write: create acknowledged, later reads miss it", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, describe, Output{Outcome: OK}, 20, 30),
			op(1, describe, Output{Outcome: NotFound}, 40, 50),
		}, porcupine.Illegal},
		{"an unknown create may take effect later", []porcupine.Operation{
			op(0, create, Output{Outcome: Unknown}, 0, math.MaxInt64),
			op(1, describe, Output{Outcome: NotFound}, 20, 30),
			op(1, describe, Output{Outcome: OK}, 40, 50),
		}, porcupine.Ok},
		{"an unknown create cannot undo itself", []porcupine.Operation{
			op(0, create, Output{Outcome: Unknown}, 0, math.MaxInt64),
			op(1, describe, Output{Outcome: OK}, 20, 30),
			op(1, describe, Output{Outcome: NotFound}, 40, 50),
		}, porcupine.Illegal},
		{"delete then create", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(0, del, Output{Outcome: OK}, 20, 30),
			op(1, del, Output{Outcome: NotFound}, 40, 50),
			op(1, create, Output{Outcome: OK}, 60, 70),
		}, porcupine.Ok},
		{"list is checked per name", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, list, Output{Outcome: OK, Present: []string{"b"}}, 20, 30),
		}, porcupine.Illegal},
		{"list sees the acknowledged create", []porcupine.Operation{
			op(0, create, Output{Outcome: OK}, 0, 10),
			op(1, list, Output{Outcome: OK, Present: []string{"a"}}, 20, 30),
			op(1, describe, Output{Outcome: NotFound}, 35, 36),
		}, porcupine.Illegal},
	}
	for _, tc := range cases {
		res, err := Check(tc.h, 5*time.Second, "")
		if err != nil {
			t.Fatal(err)
		}
		if res != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, res, tc.want)
		}
	}
}

func TestClassifyKeepsUnknownWritesAndDropsFailedReads(t *testing.T) {
	unavail := status.Error(codes.Unavailable, "no leader")
	cases := []struct {
		kind Kind
		err  error
		out  Outcome
		keep bool
		bad  bool
	}{
		{Create, nil, OK, true, false},
		{Create, status.Error(codes.AlreadyExists, "x"), AlreadyExists, true, false},
		{Delete, status.Error(codes.NotFound, "x"), NotFound, true, false},
		{Create, unavail, Unknown, true, false},
		{Delete, status.Error(codes.DeadlineExceeded, "x"), Unknown, true, false},
		{Describe, unavail, Unknown, false, false},
		{List, status.Error(codes.DeadlineExceeded, "x"), Unknown, false, false},
		{Create, status.Error(codes.InvalidArgument, "bad"), Unknown, false, true},
		{Create, errors.New("plain"), Unknown, true, false}, // codes.Unknown: outcome lost
	}
	for _, tc := range cases {
		out, keep, err := Classify(tc.kind, tc.err)
		if out != tc.out || keep != tc.keep || (err != nil) != tc.bad {
			t.Errorf("%s %v: got %s keep=%v err=%v", tc.kind, tc.err, out, keep, err)
		}
	}
}

func TestRecorderMarksUnknownOutcomesOpen(t *testing.T) {
	r := NewRecorder()
	r.Do(0, Input{Kind: Create, Name: "a"}, func() ([]string, error) { return nil, status.Error(codes.Unavailable, "x") })
	r.Do(0, Input{Kind: Describe, Name: "a"}, func() ([]string, error) { return nil, status.Error(codes.Unavailable, "x") })
	r.Do(0, Input{Kind: Delete, Name: "a"}, func() ([]string, error) { return nil, status.Error(codes.PermissionDenied, "x") })
	h := r.Operations()
	if len(h) != 1 || h[0].Return != math.MaxInt64 {
		t.Fatalf("history = %+v, want one create left open", h)
	}
	if len(r.Unexpected()) != 1 || r.Count(Unknown) != 2 {
		t.Fatalf("unexpected=%v unknown=%d", r.Unexpected(), r.Count(Unknown))
	}
}

func TestLeaderWatchFlagsTwoLeadersInOneTerm(t *testing.T) {
	w := &LeaderWatch{leaders: map[uint64]string{}}
	now := time.Now()
	w.record(3, "n1", now)
	w.record(3, "n1", now.Add(time.Millisecond))
	w.record(4, "n2", now.Add(time.Second))
	if len(w.Violations()) != 0 || w.Terms() != 2 {
		t.Fatalf("violations=%v terms=%d", w.Violations(), w.Terms())
	}
	w.record(4, "n3", now.Add(2*time.Second))
	if len(w.Violations()) != 1 {
		t.Fatalf("two leaders in term 4 not flagged: %v", w.Violations())
	}
	d, node, err := w.NewLeaderAfter(now.Add(500*time.Millisecond), 3, 0)
	if err != nil || node != "n2" || d != 500*time.Millisecond {
		t.Fatalf("NewLeaderAfter = %s %s %v", d, node, err)
	}
	if _, _, err := w.NewLeaderAfter(now, 4, 0); err == nil {
		t.Fatal("no leader above term 4 was found")
	}
}
