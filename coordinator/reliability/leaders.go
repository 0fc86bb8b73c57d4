package reliability

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node is what the leader watch reads of a running coordinator.
type Node interface {
	NodeID() string
	Raft() *raft.Raft
}

// LeaderWatch samples every node's Raft state every millisecond or two and
// records which node led in which term. A node counts as leader in term T
// only when its term read T both before and after it reported Leader, so a
// sample taken across a transition is not mistaken for one.
type LeaderWatch struct {
	nodes func() []Node
	stop  chan struct{}
	done  chan struct{}

	mu         sync.Mutex
	leaders    map[uint64]string // term -> node
	seen       []leaderSeen      // first sighting of each term's leader, in order
	violations []string
	samples    int
}

type leaderSeen struct {
	term uint64
	node string
	at   time.Time
}

// WatchLeaders starts sampling the nodes nodes returns (called each round,
// so restarted nodes are picked up). Stop ends it.
func WatchLeaders(nodes func() []Node) *LeaderWatch {
	w := &LeaderWatch{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{}), leaders: map[uint64]string{}}
	go w.run()
	return w
}

func (w *LeaderWatch) run() {
	defer close(w.done)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		for _, n := range w.nodes() {
			r := n.Raft()
			if r == nil {
				continue
			}
			t1 := r.CurrentTerm()
			st := r.State()
			t2 := r.CurrentTerm()
			if st != raft.Leader || t1 != t2 {
				continue
			}
			w.record(t1, n.NodeID(), time.Now())
		}
	}
}

func (w *LeaderWatch) record(term uint64, node string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	prev, ok := w.leaders[term]
	switch {
	case !ok:
		w.leaders[term] = node
		w.seen = append(w.seen, leaderSeen{term: term, node: node, at: at})
	case prev != node:
		w.violations = append(w.violations, fmt.Sprintf("term %d has two leaders: %s and %s", term, prev, node))
	}
}

// Stop ends the sampling.
func (w *LeaderWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Violations lists terms seen with two leaders.
func (w *LeaderWatch) Violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}

// Terms is the number of terms in which a leader was seen.
func (w *LeaderWatch) Terms() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.leaders)
}

// CurrentTerm is the highest term a leader was seen in, and that leader.
func (w *LeaderWatch) CurrentTerm() (uint64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var term uint64
	var node string
	for t, n := range w.leaders {
		if t > term {
			term, node = t, n
		}
	}
	return term, node
}

// NewLeaderAfter waits up to timeout for a leader in a term above term
// whose node is not excluded, and returns how long after since it was
// first seen.
func (w *LeaderWatch) NewLeaderAfter(since time.Time, term uint64, timeout time.Duration, exclude ...string) (time.Duration, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		seen := append([]leaderSeen(nil), w.seen...)
		w.mu.Unlock()
		sort.Slice(seen, func(i, j int) bool { return seen[i].at.Before(seen[j].at) })
	next:
		for _, s := range seen {
			if s.term <= term || s.at.Before(since) {
				continue
			}
			for _, x := range exclude {
				if s.node == x {
					continue next
				}
			}
			return s.at.Sub(since), s.node, nil
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("no new leader above term %d within %s", term, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
