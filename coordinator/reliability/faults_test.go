package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/perfleet/perfleet/coordinator/reliability"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// newLeaderWithin is the bound on the time from a fault to a new
// leader.
const newLeaderWithin = 3 * time.Second

// checkLeaderTime waits for a leader in a term above term (not on the
// excluded nodes) and fails the test past newLeaderWithin.
func checkLeaderTime(t *testing.T, w *reliability.LeaderWatch, since time.Time, term uint64, o *outcome, exclude ...string) {
	t.Helper()
	d, _, err := w.NewLeaderAfter(since, term, 15*time.Second, exclude...)
	if err != nil {
		t.Errorf("after the fault: %v", err)
		return
	}
	if d > newLeaderWithin {
		t.Errorf("new leader after %s, want within %s", d, newLeaderWithin)
	}
	o.leaderTime = max(o.leaderTime, d)
}

const linearizable = "porcupine Ok; 0 acknowledged writes lost; one leader per term; new leader within 3 s; same state hash on every node"

// 1. Kill the leader under 200 concurrent creates.
func TestKillLeaderUnderConcurrentCreates(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 16, poolSize: 8, uniqueClients: 200})
	time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
	var o outcome
	for round := 0; round < pick(1, 3); round++ {
		li := c.leader()
		term, _ := w.CurrentTerm()
		killed := time.Now()
		c.kill(li)
		o.faults++
		checkLeaderTime(t, w, killed, term, &o, c.cfgs[li].NodeID)
		time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
		c.restart(li)
		time.Sleep(pick(time.Second, 3*time.Second))
	}
	l.stop()
	acked := l.ackCount.Load()
	l.finish(t, w, &o)
	o.extra = append(o.extra, fmt.Sprintf("%d unique creates acknowledged", acked))
	report.Add(o.row(t, "1. kill -9 the leader under 200 concurrent creates", linearizable,
		fmt.Sprintf("%d leader kills (crash, then restart)", o.faults)))
}

// 2. Partition the old leader into a minority: it must not answer reads
// from its stale state.
func TestPartitionedOldLeaderServesNoStaleReads(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 16, poolSize: 8, uniqueClients: 16})
	time.Sleep(pick(time.Second, 3*time.Second))
	var o outcome
	old := c.leader()
	term, _ := w.CurrentTerm()
	cut := time.Now()
	c.net.Isolate(c.cfgs[old].RaftAddr, c.addrs())
	o.faults++
	checkLeaderTime(t, w, cut, term, &o, c.cfgs[old].NodeID)

	// The majority accepts a write the old leader cannot know of; a read
	// of it on the old leader must fail rather than answer NotFound.
	maj := (old + 1) % 3
	marker := "marker-after-partition"
	var err error
	for try := 0; try < 50; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		_, err = createConfig(marker)(ctx, c.cli[maj])
		cancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("majority write during the partition: %v", err)
	}
	stale, refused := 0, 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		_, err := c.cli[old].DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: marker})
		cancel()
		switch {
		case err == nil:
		case unavailable(err):
			refused++
		default:
			stale++
			t.Errorf("read on the partitioned old leader answered from stale state: %v", err)
		}
	}
	time.Sleep(pick(2*time.Second, 10*time.Second))
	l.stop()
	l.finish(t, w, &o)
	o.extra = append(o.extra, fmt.Sprintf("reads of a newer write on the old leader: %d refused, %d stale", refused, stale))
	report.Add(o.row(t, "2. partition the old leader into a minority", linearizable+"; no stale read on the old leader",
		"leader isolated from both followers"))
}

// 3. Stop the leader (its traffic stalls with connections open, as under
// SIGSTOP) for 10 s, then resume it.
func TestStalledLeaderResumes(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 16, poolSize: 8, uniqueClients: 16})
	time.Sleep(pick(time.Second, 3*time.Second))
	var o outcome
	old := c.leader()
	term, _ := w.CurrentTerm()
	stalled := time.Now()
	c.net.Stall(c.cfgs[old].RaftAddr)
	o.faults++
	checkLeaderTime(t, w, stalled, term, &o, c.cfgs[old].NodeID)
	time.Sleep(pick(3*time.Second, 10*time.Second) - time.Since(stalled))
	c.net.Resume(c.cfgs[old].RaftAddr)
	time.Sleep(pick(time.Second, 3*time.Second))
	l.stop()
	l.finish(t, w, &o)
	report.Add(o.row(t, "3. stop the leader for 10 s, then resume it", linearizable,
		fmt.Sprintf("leader's Raft traffic stalled %s with connections held open (in-process SIGSTOP)", pick("3 s", "10 s"))))
}

// 4. Random partitions every 5 s on 5 nodes.
func TestRandomPartitionsOnFiveNodes(t *testing.T) {
	c := newCluster(t, 5, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 20, poolSize: 10, uniqueClients: 20})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	var o outcome
	every := pick(2*time.Second, 5*time.Second)
	rounds := pick(4, 12)
	addrs := c.addrs()
	var kinds []string
	for r := 0; r < rounds; r++ {
		time.Sleep(every)
		perm := rng.Perm(5)
		if rng.IntN(2) == 0 { // half the time, cut the leader off first
			_, id := w.CurrentTerm()
			li := c.index(id)
			for k, v := range perm {
				if v == li {
					perm[0], perm[k] = perm[k], perm[0]
				}
			}
			if rng.IntN(3) != 1 {
				perm[0], perm[4] = perm[4], perm[0] // into the minority of 2
			}
		}
		switch rng.IntN(3) {
		case 0: // a majority of 3 and a minority of 2
			c.net.Partition(names(addrs, perm[:3]), names(addrs, perm[3:]))
			kinds = append(kinds, "3|2")
		case 1: // one node alone
			c.net.Isolate(addrs[perm[0]], addrs)
			kinds = append(kinds, "1|4")
		default: // a bridge: two halves that both reach one node
			c.net.Heal()
			c.net.Partition(names(addrs, perm[:2]), names(addrs, perm[3:]))
			kinds = append(kinds, "2|bridge|2")
		}
		o.faults++
	}
	time.Sleep(every)
	c.net.Heal()
	healed := time.Now()
	c.leader()
	o.extra = append(o.extra, fmt.Sprintf("a leader every node agrees on %s after healing", time.Since(healed).Round(time.Millisecond)))
	time.Sleep(pick(time.Second, 3*time.Second))
	l.stop()
	l.finish(t, w, &o)
	o.extra = append(o.extra, fmt.Sprintf("partitions %v, dials refused %d, connections cut %d", kinds, c.net.Stats().DialsRefused, c.net.Stats().ConnsCut))
	report.Add(o.row(t, fmt.Sprintf("4. random partitions every %s on 5 nodes", every), linearizable,
		fmt.Sprintf("%d partitions", o.faults)))
}

func names(addrs []string, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, addrs[i])
	}
	return out
}

// 5. kill -9 all nodes at once, then restart them.
func TestKillAllNodesAndRestart(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 16, poolSize: 8, uniqueClients: 32})
	time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
	var o outcome
	term, _ := w.CurrentTerm()
	var wg sync.WaitGroup
	for i := range c.up {
		wg.Add(1)
		go func() { defer wg.Done(); c.kill(i) }()
	}
	wg.Wait()
	o.faults++
	before := l.ackCount.Load()
	time.Sleep(500 * time.Millisecond)
	restarted := time.Now()
	for i := range c.up {
		c.restart(i)
	}
	d, _, err := w.NewLeaderAfter(restarted, term, 15*time.Second)
	if err != nil {
		t.Errorf("after the restart: %v", err)
	}
	o.extra = append(o.extra, fmt.Sprintf("leader %s after all nodes were started again; %d creates acknowledged before the crash", d.Round(time.Millisecond), before))
	if d > newLeaderWithin {
		t.Errorf("leader after %s, want within %s", d, newLeaderWithin)
	}
	time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
	l.stop()
	l.finish(t, w, &o)
	report.Add(o.row(t, "5. kill -9 all nodes at once, then restart", linearizable, "all 3 nodes crashed together"))
}

// 6. Leadership transfers while clients write 500 creates per second.
func TestLeadershipTransferUnderWrites(t *testing.T) {
	c := newCluster(t, 3, nil)
	w := c.watch()
	l := c.startLoad(loadOpts{poolClients: 8, poolSize: 8, uniqueClients: 64, rate: 500})
	time.Sleep(time.Second)
	var o outcome
	for r := 0; r < pick(3, 10); r++ {
		li := c.leader()
		term, _ := w.CurrentTerm()
		began := time.Now()
		if err := c.up[li].Raft().LeadershipTransfer().Error(); err != nil {
			t.Errorf("transfer %d: %v", r, err)
			continue
		}
		o.faults++
		checkLeaderTime(t, w, began, term, &o)
		time.Sleep(pick(time.Second, 2*time.Second))
	}
	l.stop()
	took := time.Since(l.started)
	acked := l.ackCount.Load()
	l.finish(t, w, &o)
	o.extra = append(o.extra, fmt.Sprintf("%.0f acknowledged creates/s offered 500/s", float64(acked)/took.Seconds()))
	report.Add(o.row(t, "6. leadership transfer at 500 writes/s", linearizable,
		fmt.Sprintf("%d transfers", o.faults)))
}
