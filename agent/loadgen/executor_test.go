package loadgen

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// fakeDoer "serves" each request in serve(job) time, honouring ctx.
func fakeDoer(serve func(sendNs int64) time.Duration, inflight, peak *atomic.Int64) Doer {
	return DoerFunc(func(ctx context.Context, job Job) *metrics.RequestRecord {
		rec := &metrics.RequestRecord{SendNs: metrics.Now(), ScheduledNs: job.ScheduledNs}
		if inflight != nil {
			n := inflight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			defer inflight.Add(-1)
		}
		t := time.NewTimer(serve(rec.SendNs))
		select {
		case <-t.C:
		case <-ctx.Done():
			rec.Error = "cancelled"
		}
		rec.EndNs = metrics.Now()
		rec.OutputTokens = 1
		return rec
	})
}

type collect struct {
	mu   sync.Mutex
	recs []*metrics.RequestRecord
}

func (c *collect) Record(r *metrics.RequestRecord) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
}

func TestClosedLoopCountAndConcurrency(t *testing.T) {
	var inflight, peak atomic.Int64
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return 2 * time.Millisecond }, &inflight, &peak), Sink: c}
	res, err := e.Run(context.Background(), Stage{Mode: ClosedLoop, Concurrency: 8, RequestCount: 200}, metrics.PhaseProfiling)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || len(c.recs) != 200 {
		t.Fatalf("sent %d records %d", res.Sent, len(c.recs))
	}
	if peak.Load() != 8 {
		t.Fatalf("peak concurrency %d, want 8", peak.Load())
	}
	seen := map[int64]bool{}
	for _, r := range c.recs {
		if r.Phase != metrics.PhaseProfiling || r.ScheduledNs != r.SendNs && r.SendNs-r.ScheduledNs > int64(time.Millisecond) {
			t.Fatalf("bad record %+v", r)
		}
	}
	_ = seen
}

func TestOpenLoopFollowsSchedule(t *testing.T) {
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return time.Millisecond }, nil, nil), Sink: c}
	res, err := e.Run(context.Background(), Stage{Mode: OpenLoop, Rate: 500, Pattern: Constant, RequestCount: 250}, metrics.PhaseProfiling)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 250 {
		t.Fatalf("sent %d", res.Sent)
	}
	var lags []float64
	sched := make([]int64, 0, len(c.recs))
	for _, r := range c.recs {
		lags = append(lags, float64(r.SendNs-r.ScheduledNs)/1e6)
		sched = append(sched, r.ScheduledNs)
	}
	sort.Slice(sched, func(i, j int) bool { return sched[i] < sched[j] })
	if gap := time.Duration(sched[1] - sched[0]); gap != 2*time.Millisecond {
		t.Fatalf("scheduled gap %v", gap)
	}
	st := metrics.SummarizeValues(lags)
	t.Logf("lag p50 %.3f ms p99 %.3f ms max %.3f", st.Pct(50), st.Pct(99), st.Max)
	if st.Pct(50) > 1 {
		t.Fatalf("median schedule lag %.3f ms", st.Pct(50))
	}
	if got := res.SendSeconds(); got < 0.45 || got > 0.55 {
		t.Fatalf("send seconds %v, want 0.5", got)
	}
}

// TestCoordinatedOmission: a server that stalls for 1 s in the middle of an
// open-loop run (requests capped at one in flight) shows the stall in the
// latency measured from the scheduled send, not in the actual-send one.
func TestCoordinatedOmission(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	start := metrics.Now()
	stallFrom, stallTo := start+int64(time.Second), start+int64(2*time.Second)
	var stalled atomic.Bool
	serve := func(send int64) time.Duration {
		if send >= stallFrom && send < stallTo && stalled.CompareAndSwap(false, true) {
			return time.Duration(stallTo - send)
		}
		return time.Millisecond
	}
	acc := metrics.NewAccumulator("", nil, 100000)
	sink := SinkFunc(func(r *metrics.RequestRecord) { acc.Add(r) })
	e := &Executor{Doer: fakeDoer(serve, nil, nil), Sink: sink}
	res, err := e.Run(context.Background(), Stage{Mode: OpenLoop, Rate: 200, Pattern: Constant, MaxConcurrency: 1,
		Duration: 3 * time.Second, Grace: 5 * time.Second}, metrics.PhaseProfiling)
	if err != nil {
		t.Fatal(err)
	}
	s := metrics.Summarize(acc.Total(), acc.Exact(), nil)
	sched, _ := s.Get(metrics.RequestLatency)
	actual, _ := s.Get(metrics.RequestLatencyActualSend)
	lag, _ := s.Get(metrics.ScheduleLag)
	t.Logf("sent %d late %d cap=%v; p99 scheduled %.1f ms, actual %.1f ms, lag p99 %.1f ms",
		res.Sent, res.Late, res.CapLimited, sched.Stats.Pct(99), actual.Stats.Pct(99), lag.Stats.Pct(99))
	if sched.Stats.Pct(99) < 500 {
		t.Errorf("scheduled-send p99 %.1f ms does not show the 1 s stall", sched.Stats.Pct(99))
	}
	if actual.Stats.Pct(99) > 50 {
		t.Errorf("actual-send p99 %.1f ms should hide the stall", actual.Stats.Pct(99))
	}
	if actual.Stats.Max < 900 {
		t.Errorf("the stalled request itself must take ~1 s, max %.1f", actual.Stats.Max)
	}
	if res.Late < 100 || !res.CapLimited {
		t.Errorf("late sends %d cap %v", res.Late, res.CapLimited)
	}
}

func TestDurationGraceCancels(t *testing.T) {
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return time.Hour }, nil, nil), Sink: c}
	t0 := time.Now()
	res, err := e.Run(context.Background(), Stage{Mode: ClosedLoop, Concurrency: 3, Duration: 50 * time.Millisecond, Grace: 50 * time.Millisecond}, metrics.PhaseProfiling)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > time.Second {
		t.Fatalf("took %v", el)
	}
	if res.Cancelled != 3 || len(c.recs) != 3 || !c.recs[0].Cancelled {
		t.Fatalf("cancelled %d records %d", res.Cancelled, len(c.recs))
	}
}

func TestMaxLatenessDrops(t *testing.T) {
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return 30 * time.Millisecond }, nil, nil), Sink: c}
	res, _ := e.Run(context.Background(), Stage{Mode: OpenLoop, Rate: 1000, Pattern: Constant, RequestCount: 100,
		MaxConcurrency: 1, MaxLateness: 5 * time.Millisecond}, metrics.PhaseProfiling)
	if res.Dropped == 0 || res.Sent+res.Dropped != 100 {
		t.Fatalf("sent %d dropped %d", res.Sent, res.Dropped)
	}
}

func TestUsersProfile(t *testing.T) {
	var inflight, peak atomic.Int64
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return 5 * time.Millisecond }, &inflight, &peak), Sink: c}
	prof := []UserStep{{0, 1}, {100 * time.Millisecond, 4}, {200 * time.Millisecond, 2}}
	_, err := e.Run(context.Background(), Stage{Mode: Users, Profile: prof, Duration: 300 * time.Millisecond}, metrics.PhaseProfiling)
	if err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 4 {
		t.Fatalf("peak users %d", peak.Load())
	}
}

func TestReplay(t *testing.T) {
	c := &collect{}
	e := &Executor{Doer: fakeDoer(func(int64) time.Duration { return 0 }, nil, nil), Sink: c}
	offs := []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond}
	res, err := e.Run(context.Background(), Stage{Mode: Replay, Offsets: offs}, metrics.PhaseProfiling)
	if err != nil || res.Sent != 4 {
		t.Fatalf("sent %d err %v", res.Sent, err)
	}
	var rel []time.Duration
	for _, r := range c.recs {
		rel = append(rel, time.Duration(r.ScheduledNs-res.StartNs))
	}
	sort.Slice(rel, func(i, j int) bool { return rel[i] < rel[j] })
	for i := range offs {
		if d := rel[i] - offs[i]; d < 0 || d > time.Millisecond {
			t.Fatalf("scheduled %v, want %v", rel, offs)
		}
	}
}
