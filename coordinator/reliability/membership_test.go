package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/perfleet/perfleet/coordinator/reliability"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// lossyNet wraps memberlist's in-memory mock network: packets are dropped
// at random and delayed by random jitter, and a killed node receives
// nothing and accepts no streams (the mock would block its senders).
type lossyNet struct {
	mock   *memberlist.MockNetwork
	mu     sync.Mutex
	loss   float64
	jitter time.Duration
	dead   map[string]bool
	rng    *rand.Rand
	wg     sync.WaitGroup
	drops  int
	sent   int
}

type lossyTransport struct {
	*memberlist.MockTransport
	n *lossyNet
}

func (n *lossyNet) transport(name string) *lossyTransport {
	return &lossyTransport{MockTransport: n.mock.NewTransport(name), n: n}
}

// decide reports whether a packet to addr is delivered, and after what delay.
func (n *lossyNet) decide(addr string) (bool, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent++
	if n.dead[addr] || n.rng.Float64() < n.loss {
		n.drops++
		return false, 0
	}
	var d time.Duration
	if n.jitter > 0 {
		d = time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	return true, d
}

func (n *lossyNet) isDead(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dead[addr]
}

func (t *lossyTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *lossyTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	ok, delay := t.n.decide(a.Addr)
	if !ok {
		return now, nil // lost on the wire: UDP says nothing
	}
	buf := append([]byte(nil), b...)
	t.n.wg.Add(1)
	go func() {
		defer t.n.wg.Done()
		time.Sleep(delay)
		if !t.n.isDead(a.Addr) {
			_, _ = t.MockTransport.WriteToAddress(buf, a)
		}
	}()
	return now, nil
}

func (t *lossyTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *lossyTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.n.isDead(a.Addr) {
		return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
	}
	return t.MockTransport.DialAddressTimeout(a, timeout)
}

// kill marks a node dead and drains what is still addressed to it, so no
// sender blocks on the mock's unbuffered channels.
func (n *lossyNet) kill(t *lossyTransport, stop <-chan struct{}) {
	addr, _, _ := t.FinalAdvertiseAddr("", 0)
	n.mu.Lock()
	n.dead[fmt.Sprintf("%s:%d", addr, mustPort(t))] = true
	n.mu.Unlock()
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-t.PacketCh():
			case c := <-t.StreamCh():
				c.Close()
			}
		}
	}()
}

func mustPort(t *lossyTransport) int {
	_, p, _ := t.FinalAdvertiseAddr("", 0)
	return p
}

// 50 agents gossiping with the production (LAN) timings over a network
// that loses 5% of packets and delays each by up to 100 ms: at most one
// false failure in a bounded run, and a killed agent detected by every
// other within 10 s.
func TestMembershipUnderPacketLossAndJitter(t *testing.T) {
	// 50 memberlists in one process under the race detector, beside the
	// other packages' tests on 2 cores, miss their own probe deadlines
	// from CPU starvation alone; the short profile under -race runs 12.
	nodes := 50
	if raceDetector && !full {
		nodes = 12
	}
	ln := &lossyNet{mock: &memberlist.MockNetwork{}, dead: map[string]bool{}, rng: rand.New(rand.NewPCG(5, 50))}
	transports := make([]*lossyTransport, nodes)
	for i := range transports {
		transports[i] = ln.transport(fmt.Sprintf("agent-%02d", i))
	}
	var mu sync.Mutex
	killed := ""
	falseFailures := map[string]bool{}
	detected := map[string]time.Time{} // observer -> when it saw the killed node fail
	pools := make([]*gossip.Pool, nodes)
	for i := range pools {
		name := fmt.Sprintf("agent-%02d", i)
		p, err := gossip.Start(gossip.Config{Name: name, BindAddr: "127.0.0.1:0", Transport: transports[i],
			Meta: &pb.GossipMeta{Role: gossip.RoleAgent},
			OnChange: func(m gossip.Member) {
				if m.State != gossip.StateFailed {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if m.Name == killed {
					if _, ok := detected[name]; !ok {
						detected[name] = time.Now()
					}
				} else {
					falseFailures[m.Name] = true
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		pools[i] = p
	}
	stop := make(chan struct{})
	t.Cleanup(func() {
		// Take every node off the network first, draining what is in
		// flight to it, so no delayed packet waits on a stopped pool.
		for _, tr := range transports {
			ln.kill(tr, stop)
		}
		for _, p := range pools {
			_ = p.Shutdown()
		}
		ln.wg.Wait()
		// memberlist's Shutdown does not wait for a probe in flight; each
		// gives up within a probe interval (1 s).
		time.Sleep(1500 * time.Millisecond)
		close(stop)
	})
	seed := pools[0].Addr()
	began := time.Now()
	for _, p := range pools[1:] {
		if _, err := p.Join([]string{seed}); err != nil {
			t.Fatal(err)
		}
	}
	converged := func() bool { return everyoneSeesAlive(pools, nodes) }
	logged := false
	for !converged() {
		if !logged && time.Since(began) > 10*time.Second {
			logged = true
			for i, p := range pools {
				var missing []string
				seen := map[string]gossip.State{}
				for _, m := range p.Members() {
					seen[m.Name] = m.State
				}
				for j := range pools {
					if st := seen[fmt.Sprintf("agent-%02d", j)]; st != gossip.StateAlive {
						missing = append(missing, fmt.Sprintf("%02d:%s", j, st))
					}
				}
				if len(missing) > 0 {
					t.Logf("after 10 s agent-%02d does not yet see as alive: %v", i, missing)
				}
			}
		}
		if time.Since(began) > 90*time.Second {
			var counts []int
			for _, p := range pools {
				alive := 0
				for _, m := range p.Members() {
					if m.State == gossip.StateAlive {
						alive++
					}
				}
				counts = append(counts, alive)
			}
			t.Fatalf("%d members did not converge within 90 s; alive members seen by each: %v", nodes, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	convergeTook := time.Since(began)

	ln.mu.Lock()
	ln.loss, ln.jitter = 0.05, 100*time.Millisecond
	ln.mu.Unlock()
	steady := pick(20*time.Second, 60*time.Second)
	time.Sleep(steady)
	mu.Lock()
	falseBefore := len(falseFailures)
	victim := nodes - 1
	killed = fmt.Sprintf("agent-%02d", victim)
	mu.Unlock()
	killedAt := time.Now()
	ln.kill(transports[victim], stop)
	_ = pools[victim].Shutdown()

	var worst time.Duration
	for {
		mu.Lock()
		n := len(detected)
		if n == nodes-1 {
			for _, at := range detected {
				worst = max(worst, at.Sub(killedAt))
			}
		}
		mu.Unlock()
		if n == nodes-1 {
			break
		}
		if time.Since(killedAt) > 60*time.Second {
			t.Fatalf("after 60 s only %d of %d members saw the kill", n, nodes-1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if falseBefore > 1 {
		t.Errorf("%d members falsely declared failed under loss, want at most 1", falseBefore)
	}
	if worst > 10*time.Second {
		t.Errorf("the killed agent was detected by the last member after %s, want within 10 s", worst)
	}
	ln.mu.Lock()
	dropped, sent := ln.drops, ln.sent
	ln.mu.Unlock()
	t.Logf("converged in %s; %d false failures; kill detected by all in %s", convergeTook, falseBefore, worst)
	report.Add(reliability.Row{Test: fmt.Sprintf("membership: %d agents at 5%% packet loss", nodes) + " and up to 100 ms jitter (memberlist mock network, the agents' production timings)",
		Criterion: "at most 1 false failure; a real kill detected within 10 s",
		Measured: fmt.Sprintf("converged in %s; %s under loss: %d false failures (%d of %d packets dropped); kill detected by all %d others within %s",
			convergeTook.Round(time.Millisecond), steady, falseBefore, dropped, sent, nodes-1, worst.Round(time.Millisecond)),
		Pass: !t.Failed()})
}

// everyoneSeesAlive reports whether every pool sees exactly n members alive.
func everyoneSeesAlive(pools []*gossip.Pool, n int) bool {
	for _, p := range pools {
		alive := 0
		for _, m := range p.Members() {
			if m.State == gossip.StateAlive {
				alive++
			}
		}
		if alive != n {
			return false
		}
	}
	return true
}
