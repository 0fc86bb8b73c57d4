package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestGossipKeyRotationUnderTrafficCausesNoFlaps rotates the gossip key of
// a running pool the way `perfleet operator gossip-keyring install / use /
// remove` does: each step is one replicated keyring that every node applies
// with SetKeys, at its own moment (spread over 1 s, as servers apply a
// commit and agents receive it on their control streams), the next step
// right after. Meanwhile every member rebroadcasts its metadata twice a
// second and packets are delayed by up to 30 ms, so packets sealed with a
// key being retired are still in flight when it goes. No member may be
// marked failed or left at any point; afterwards everyone holds only the
// new key, a node with only the old key cannot join, and one with the new
// key can. memberlist's own log counts what members could not decrypt:
// nothing may be, until the old key is removed.
func TestGossipKeyRotationUnderTrafficCausesNoFlaps(t *testing.T) {
	nodes := pick(16, 24)
	if raceDetector && !full {
		nodes = 10
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	ln := &lossyNet{mock: &memberlist.MockNetwork{}, dead: map[string]bool{}, rng: rand.New(rand.NewPCG(7, 70))}
	var mu sync.Mutex
	var flaps []string
	rotating := false
	phase := "steady"
	undecryptable := map[string]int{} // by phase: packets or streams a member could not decrypt
	logger := slog.New(&countingHandler{match: "ecrypt", hit: func() {
		mu.Lock()
		undecryptable[phase]++
		mu.Unlock()
	}})
	pools := make([]*gossip.Pool, nodes)
	transports := make([]*lossyTransport, 0, nodes+2)
	start := func(name string, key []byte) *gossip.Pool {
		tr := ln.transport(name)
		transports = append(transports, tr)
		p, err := gossip.Start(gossip.Config{Name: name, BindAddr: "127.0.0.1:0", Transport: tr, Key: key, Logger: logger,
			Meta: &pb.GossipMeta{Role: gossip.RoleAgent},
			OnChange: func(m gossip.Member) {
				if m.State != gossip.StateFailed && m.State != gossip.StateLeft {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				flaps = append(flaps, fmt.Sprintf("%s saw %s %s (rotation under way: %v)", name, m.Name, m.State, rotating))
			}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := range pools {
		pools[i] = start(fmt.Sprintf("agent-%02d", i), k1)
	}
	stop, drained := make(chan struct{}), make(chan struct{})
	var traffic sync.WaitGroup
	var extra []*gossip.Pool // joined after the rotation
	t.Cleanup(func() {
		close(stop)
		traffic.Wait()
		// Off the network first, draining what is in flight to each node,
		// so no sender blocks on the mock's channels; then shut down.
		for _, tr := range transports {
			ln.kill(tr, drained)
		}
		for _, p := range append(pools, extra...) {
			_ = p.Shutdown()
		}
		ln.wg.Wait()
		time.Sleep(1500 * time.Millisecond) // a probe in flight gives up within a probe interval
		close(drained)
	})
	for _, p := range pools[1:] {
		if _, err := p.Join([]string{pools[0].Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	for !everyoneSeesAlive(pools, nodes) {
		if time.Since(began) > 90*time.Second {
			t.Fatalf("%d members did not converge within 90 s", nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ln.mu.Lock()
	ln.jitter = 30 * time.Millisecond
	ln.mu.Unlock()
	// Traffic: each member changes its metadata twice a second, which
	// memberlist broadcasts to the others.
	for i, p := range pools {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					_ = p.UpdateMeta(&pb.GossipMeta{Role: gossip.RoleAgent, Labels: map[string]string{"beat": fmt.Sprint(i, "-", n)}})
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)

	mu.Lock()
	rotating = true
	mu.Unlock()
	rng := rand.New(rand.NewPCG(11, 12))
	apply := func(step string, primary []byte, all [][]byte) {
		mu.Lock()
		phase = step
		mu.Unlock()
		order := rng.Perm(nodes)
		spread := time.Second
		for _, i := range order {
			if err := pools[i].SetKeys(primary, all); err != nil {
				t.Fatalf("agent-%02d: %v", i, err)
			}
			time.Sleep(spread / time.Duration(nodes))
		}
	}
	rotStart := time.Now()
	apply("install", k1, [][]byte{k1, k2})
	apply("use", k2, [][]byte{k1, k2})
	apply("remove", k2, [][]byte{k2})
	rotTook := time.Since(rotStart)
	mu.Lock()
	rotating, phase = false, "after"
	mu.Unlock()
	// Long enough for a suspicion raised during the rotation to end in a
	// failure (SuspicionMult 3 × log10(n) probe intervals, and more).
	time.Sleep(pick(10*time.Second, 20*time.Second))

	for i, p := range pools {
		primary, all := p.Keys()
		if !bytes.Equal(primary, k2) || len(all) != 1 {
			t.Fatalf("agent-%02d holds %d keys, primary new: %v", i, len(all), bytes.Equal(primary, k2))
		}
	}
	if !everyoneSeesAlive(pools, nodes) {
		t.Fatal("after the rotation not every member sees all others alive")
	}
	// A node with only the old key is shut out; one with the new key joins.
	old := start("agent-old", k1)
	extra = append(extra, old)
	if n, err := old.Join([]string{pools[0].Addr()}); err == nil && n > 0 {
		t.Errorf("a node with only the retired key joined (%d contacted)", n)
	}
	fresh := start("agent-new", k2)
	extra = append(extra, fresh)
	if _, err := fresh.Join([]string{pools[0].Addr()}); err != nil {
		t.Errorf("a node with the new key could not join: %v", err)
	}
	mu.Lock()
	got := append([]string(nil), flaps...)
	undec := fmt.Sprint(undecryptable)
	// Until the last member uses the new key, every member still accepts
	// the old one, so nothing may go undecrypted; when the old key goes,
	// only packets sealed with it and still in flight (30 ms) may, and
	// afterwards the retired-key node's attempts to join.
	badSteps := undecryptable["steady"] + undecryptable["install"] + undecryptable["use"]
	mu.Unlock()
	if len(got) > 0 {
		t.Errorf("%d flaps during or after the rotation: %v", len(got), got)
	}
	if badSteps > 0 {
		t.Errorf("members could not decrypt what others sent before the old key was removed: %s", undec)
	}
	ln.mu.Lock()
	sent := ln.sent
	ln.mu.Unlock()
	t.Logf("%d members rotated install/use/remove in %s under metadata traffic and 30 ms jitter: %d flaps; undecryptable by phase %s; %d packets",
		nodes, rotTook.Round(time.Millisecond), len(got), undec, sent)
	report.Add(reliability.Row{Test: fmt.Sprintf("gossip key rotation (install, use, remove) on %d members under metadata traffic, 30 ms jitter", nodes),
		Criterion: "no member marked failed or left; old-key node refused, new-key node joins",
		Measured:  fmt.Sprintf("rotation applied in %s (each step spread over 1 s); %d flaps; undecryptable messages by phase %s", rotTook.Round(time.Millisecond), len(got), undec),
		Pass:      !t.Failed()})
}

// countingHandler calls hit for every log record whose message contains
// match (memberlist's "Decrypt packet failed", "Failed to decrypt remote
// state").
type countingHandler struct {
	match string
	hit   func()
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.hit()
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
