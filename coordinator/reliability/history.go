// Package reliability holds the checkers of perfleet's reliability suite:
// client histories checked for linearizability with porcupine, a watch on
// Raft leadership (one leader per term, time to a new leader), and the
// report `make reliability` writes. The fault scenarios live in this
// package's tests.
package reliability

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is an operation on a named resource.
type Kind int

// The operations a history records.
const (
	Create Kind = iota
	Describe
	Delete
	List
)

func (k Kind) String() string {
	return [...]string{"create", "describe", "delete", "list"}[k]
}

// Input is one call: its kind and the resource name. A List names no
// resource; it observes every name in Names.
type Input struct {
	Kind  Kind
	Name  string
	Names []string // List only: the names it is checked for
}

// Outcome is what a call returned.
type Outcome int

// Outcomes. Unknown is a call whose effect is not known (a timeout, or
// Unavailable after the request was sent): Jepsen's :info.
const (
	OK Outcome = iota
	AlreadyExists
	NotFound
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"ok", "already-exists", "not-found", "unknown"}[o]
}

// Output is a call's outcome; a List adds the names it saw.
type Output struct {
	Outcome Outcome
	Present []string // List only
}

// Classify maps a gRPC error to an outcome. Read errors other than a
// definite answer make the read meaningless, so ok=false drops it; errors
// that are neither a definite answer nor a lost outcome are returned as err.
func Classify(kind Kind, callErr error) (out Outcome, keep bool, err error) {
	if callErr == nil {
		return OK, true, nil
	}
	switch status.Code(callErr) {
	case codes.AlreadyExists:
		return AlreadyExists, true, nil
	case codes.NotFound:
		return NotFound, true, nil
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Aborted:
		if kind == Describe || kind == List {
			return Unknown, false, nil // a read that did not answer observed nothing
		}
		return Unknown, true, nil
	}
	if errors.Is(callErr, context.DeadlineExceeded) {
		return Unknown, kind == Create || kind == Delete, nil
	}
	return Unknown, false, callErr
}

// Recorder collects a concurrent client history.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// Unexpected holds errors that were neither answers nor lost outcomes.
	unexpected []string
	counts     map[Outcome]int
}

// NewRecorder starts a history; times are measured from now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), counts: map[Outcome]int{}}
}

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Do runs call as one operation of client and records it. call returns the
// names a List saw (nil otherwise) and the call's error.
func (r *Recorder) Do(client int, in Input, call func() ([]string, error)) Outcome {
	begin := r.now()
	present, err := call()
	end := r.now()
	out, keep, bad := Classify(in.Kind, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if bad != nil {
		r.unexpected = append(r.unexpected, fmt.Sprintf("%s %s: %v", in.Kind, in.Name, bad))
		return out
	}
	r.counts[out]++
	if !keep {
		return out
	}
	if out == Unknown {
		end = math.MaxInt64 // it may take effect at any later time
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: begin,
		Output: Output{Outcome: out, Present: present}, Return: end})
	return out
}

// Operations returns a copy of the history.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Unexpected returns the errors that were neither answers nor lost outcomes.
func (r *Recorder) Unexpected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.unexpected)
}

// Count returns how many calls ended with outcome o (dropped reads included).
func (r *Recorder) Count(o Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[o]
}

// Model is the sequential specification of a named resource under the
// coordinator's rules: create refuses an existing name (ResourceInUse),
// describe and delete refuse a missing one (ResourceNotFound), list shows
// exactly the existing names. An outcome that is not known may have taken
// effect or not. The state is whether the name exists.
var Model = porcupine.Model{
	Partition: partition,
	Init:      func() any { return false },
	Step: func(st, in, out any) (bool, any) {
		exists := st.(bool)
		i, o := in.(Input), out.(Output)
		switch i.Kind {
		case Create:
			switch o.Outcome {
			case OK:
				return !exists, true
			case AlreadyExists:
				return exists, exists
			case Unknown:
				return true, true
			}
		case Delete:
			switch o.Outcome {
			case OK:
				return exists, false
			case NotFound:
				return !exists, false
			case Unknown:
				return true, false
			}
		case Describe, List:
			switch o.Outcome {
			case OK:
				return exists, exists
			case NotFound:
				return !exists, exists
			}
		}
		return false, st
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		if i.Kind == List {
			return fmt.Sprintf("list -> %s", o.Outcome)
		}
		return fmt.Sprintf("%s(%s) -> %s", i.Kind, i.Name, o.Outcome)
	},
	DescribeState: func(st any) string {
		if st.(bool) {
			return "exists"
		}
		return "absent"
	},
}

// partition splits a history by resource name. A List is linearizable as a
// whole only if each name's view of it is, so it becomes one read per name
// it was checked for: present is OK, absent is NotFound.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	by := map[string][]porcupine.Operation{}
	var order []string
	add := func(name string, op porcupine.Operation) {
		if _, ok := by[name]; !ok {
			order = append(order, name)
		}
		by[name] = append(by[name], op)
	}
	for _, op := range history {
		in := op.Input.(Input)
		if in.Kind != List {
			add(in.Name, op)
			continue
		}
		out := op.Output.(Output)
		for _, name := range in.Names {
			o := NotFound
			if slices.Contains(out.Present, name) {
				o = OK
			}
			split := op
			split.Input = Input{Kind: List, Name: name}
			split.Output = Output{Outcome: o}
			add(name, split)
		}
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, name := range order {
		out = append(out, by[name])
	}
	return out
}

// Check checks a history against Model. When it is not linearizable and
// vizPath is set, it writes porcupine's HTML visualization there.
func Check(history []porcupine.Operation, timeout time.Duration, vizPath string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(Model, history, timeout)
	if res == porcupine.Illegal && vizPath != "" {
		if err := porcupine.VisualizePath(Model, info, vizPath); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Summary describes a history in one line for the report.
func Summary(h []porcupine.Operation) string {
	kinds := map[Kind]int{}
	unknown := 0
	for _, op := range h {
		kinds[op.Input.(Input).Kind]++
		if op.Output.(Output).Outcome == Unknown {
			unknown++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops (", len(h))
	for k := Create; k <= List; k++ {
		if k > Create {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", kinds[k], k)
	}
	fmt.Fprintf(&b, "), %d unknown outcomes", unknown)
	return b.String()
}
