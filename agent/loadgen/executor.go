package loadgen

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// Job is one request an executor asks its Doer to send.
type Job struct {
	// Seq is the request's index within the stage, from 0.
	Seq int64
	// ScheduledNs is when the schedule wanted it sent (metrics.Now clock).
	// In closed loop it is the moment the worker became free.
	ScheduledNs int64
	// Phase is metrics.PhaseWarmup or metrics.PhaseProfiling.
	Phase string
}

// Doer sends one request and returns its timing record. It must set
// SendNs right before the request goes on the wire and honour ctx.
type Doer interface {
	Do(ctx context.Context, job Job) *metrics.RequestRecord
}

// DoerFunc adapts a function to Doer.
type DoerFunc func(ctx context.Context, job Job) *metrics.RequestRecord

// Do implements Doer.
func (f DoerFunc) Do(ctx context.Context, job Job) *metrics.RequestRecord { return f(ctx, job) }

// Sink receives every finished request record.
type Sink interface {
	Record(rec *metrics.RequestRecord)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(rec *metrics.RequestRecord)

// Record implements Sink.
func (f SinkFunc) Record(rec *metrics.RequestRecord) { f(rec) }

// Progress holds live counters of a running stage; safe to read any time.
type Progress struct {
	Sent     atomic.Int64
	Done     atomic.Int64
	Errors   atomic.Int64
	InFlight atomic.Int64
	Late     atomic.Int64
	Dropped  atomic.Int64
}

// StageResult says what an executor did.
type StageResult struct {
	Sent      int64
	Late      int64
	Dropped   int64
	Cancelled int64
	// FirstSendNs/LastSendNs bound the scheduled sends; StartNs/EndNs the stage.
	FirstSendNs int64
	LastSendNs  int64
	StartNs     int64
	EndNs       int64
	// CapLimited is set when an open-loop send had to wait for a free
	// max_concurrency slot.
	CapLimited bool
}

// SendSeconds is the time over which requests were sent.
func (r StageResult) SendSeconds() float64 {
	if r.Sent < 2 || r.LastSendNs <= r.FirstSendNs {
		return 0
	}
	// n sends span n−1 gaps; scale to n gaps so that rate = n / seconds.
	return float64(r.LastSendNs-r.FirstSendNs) / 1e9 * float64(r.Sent) / float64(r.Sent-1)
}

// Executor runs stages against one Doer and Sink.
type Executor struct {
	Doer     Doer
	Sink     Sink
	Progress *Progress
}

type run struct {
	e        *Executor
	st       *Stage
	phase    string
	reqCtx   context.Context
	graceHit atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	res      StageResult
	late     time.Duration
	prog     *Progress
}

// Run executes one stage and returns when every request has finished (or
// was cancelled at the end of the grace period).
func (e *Executor) Run(ctx context.Context, st Stage, phase string) (StageResult, error) {
	if err := st.Validate(); err != nil {
		return StageResult{}, err
	}
	r := &run{e: e, st: &st, phase: phase, late: st.LateThreshold, prog: e.Progress}
	if r.late <= 0 {
		r.late = time.Millisecond
	}
	if r.prog == nil {
		r.prog = &Progress{}
	}
	start := metrics.Now()
	r.res.StartNs = start
	reqCtx, cancelReq := context.WithCancel(ctx)
	defer cancelReq()
	r.reqCtx = reqCtx
	issueCtx := ctx
	if st.Duration > 0 {
		var cancel context.CancelFunc
		issueCtx, cancel = context.WithDeadline(ctx, time.Now().Add(st.Duration))
		defer cancel()
		stop := time.AfterFunc(st.Duration+st.Grace, func() { r.graceHit.Store(true); cancelReq() })
		defer stop.Stop()
	}
	switch st.Mode {
	case ClosedLoop:
		r.closedLoop(issueCtx, start)
	case OpenLoop:
		a, _ := NewArrivals(st.Pattern, st.Rate, st.Smoothness, st.Seed)
		r.openLoop(issueCtx, start, a)
	case Replay:
		r.openLoop(issueCtx, start, &FixedArrivals{Offsets: st.Offsets})
	case Users:
		r.users(issueCtx, start)
	}
	r.wg.Wait()
	r.res.EndNs = metrics.Now()
	return r.res, ctx.Err()
}

// send runs one request and hands its record to the sink.
func (r *run) send(job Job) {
	r.prog.InFlight.Add(1)
	rec := r.e.Doer.Do(r.reqCtx, job)
	r.prog.InFlight.Add(-1)
	if rec == nil {
		return
	}
	rec.Phase = job.Phase
	if rec.ScheduledNs == 0 {
		rec.ScheduledNs = job.ScheduledNs
	}
	if !rec.OK() && r.graceHit.Load() {
		rec.Cancelled = true
	}
	r.prog.Done.Add(1)
	if !rec.OK() && !rec.Cancelled {
		r.prog.Errors.Add(1)
	}
	if rec.Cancelled {
		r.mu.Lock()
		r.res.Cancelled++
		r.mu.Unlock()
	}
	r.e.Sink.Record(rec)
}

func (r *run) noteSend(scheduled, now int64) {
	r.prog.Sent.Add(1)
	r.mu.Lock()
	r.res.Sent++
	if r.res.FirstSendNs == 0 {
		r.res.FirstSendNs = scheduled
	}
	r.res.LastSendNs = scheduled
	if time.Duration(now-scheduled) >= r.late {
		r.res.Late++
		r.prog.Late.Add(1)
	}
	r.mu.Unlock()
}

func (r *run) closedLoop(issueCtx context.Context, start int64) {
	var issued atomic.Int64
	for w := 0; w < r.st.Concurrency; w++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for issueCtx.Err() == nil {
				seq := issued.Add(1) - 1
				if r.st.RequestCount > 0 && seq >= int64(r.st.RequestCount) {
					return
				}
				now := metrics.Now()
				r.noteSend(now, now)
				r.send(Job{Seq: seq, ScheduledNs: now, Phase: r.phase})
			}
		}()
	}
}

func (r *run) openLoop(issueCtx context.Context, start int64, a Arrivals) {
	var sem chan struct{}
	if r.st.MaxConcurrency > 0 {
		sem = make(chan struct{}, r.st.MaxConcurrency)
	}
	prev := start
	for seq := int64(0); ; seq++ {
		if r.st.RequestCount > 0 && seq >= int64(r.st.RequestCount) {
			return
		}
		off, ok := a.Next()
		if !ok || (r.st.Duration > 0 && off >= r.st.Duration) {
			return
		}
		due := start + int64(off)
		// Yield-spin over at most a quarter of the gap since the previous
		// send: at 10k req/s a fixed 100 µs window would spin all the time,
		// taking a core from the requests (and, on a small machine, from
		// the server) being measured.
		spin := min(spinWindow, time.Duration(due-prev)/4)
		prev = due
		if !waitUntilSpin(issueCtx, due, spin) {
			return
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			default:
				r.mu.Lock()
				r.res.CapLimited = true
				r.mu.Unlock()
				select {
				case sem <- struct{}{}:
				case <-issueCtx.Done():
					return
				}
			}
		}
		now := metrics.Now()
		if r.st.MaxLateness > 0 && time.Duration(now-due) > r.st.MaxLateness {
			r.mu.Lock()
			r.res.Dropped++
			r.mu.Unlock()
			r.prog.Dropped.Add(1)
			if sem != nil {
				<-sem
			}
			continue
		}
		r.noteSend(due, now)
		r.wg.Add(1)
		go func(job Job) {
			defer r.wg.Done()
			r.send(job)
			if sem != nil {
				<-sem
			}
		}(Job{Seq: seq, ScheduledNs: due, Phase: r.phase})
	}
}

// users runs a closed loop whose worker count follows the stage profile:
// worker i is active while i < users(t).
func (r *run) users(issueCtx context.Context, start int64) {
	var target atomic.Int64
	var issued atomic.Int64
	var mu sync.Mutex
	running := map[int]bool{}
	ensure := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < n; i++ {
			if running[i] {
				continue
			}
			running[i] = true
			r.wg.Add(1)
			go func(i int) {
				defer r.wg.Done()
				defer func() { mu.Lock(); running[i] = false; mu.Unlock() }()
				for issueCtx.Err() == nil && int64(i) < target.Load() {
					seq := issued.Add(1) - 1
					if r.st.RequestCount > 0 && seq >= int64(r.st.RequestCount) {
						return
					}
					now := metrics.Now()
					r.noteSend(now, now)
					r.send(Job{Seq: seq, ScheduledNs: now, Phase: r.phase})
				}
			}(i)
		}
	}
	for _, step := range r.st.Profile {
		if !waitUntil(issueCtx, start+int64(step.At)) {
			return
		}
		target.Store(int64(step.Users))
		ensure(step.Users)
	}
	<-issueCtx.Done()
}

// waitUntil blocks until the metrics.Now clock reaches due; it returns
// false if ctx ends first. Go timers on Linux overshoot by up to ~1 ms, so
// it uses a timer only until 1.5 ms before due, then sleeps the thread
// with nanosleep (the kernel's high-resolution timers overshoot by tens of
// µs) until spinWindow before due, and yields for the rest. Spinning over
// the whole last 2 ms instead would keep a core busy at a few thousand
// requests per second, which on a small machine starves the very
// goroutines (and the server) whose timing is being measured.
func waitUntil(ctx context.Context, due int64) bool { return waitUntilSpin(ctx, due, spinWindow) }

// waitUntilSpin is waitUntil with the window it yield-spins over before
// due (the rest it sleeps).
func waitUntilSpin(ctx context.Context, due int64, spin time.Duration) bool {
	for {
		rem := time.Duration(due - metrics.Now())
		if rem <= 0 {
			return ctx.Err() == nil
		}
		if rem > 2*time.Millisecond {
			t := time.NewTimer(rem - 1500*time.Microsecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		// A sleep shorter than the kernel's own overshoot (tens of µs)
		// would only add a syscall: at such rates, yield instead.
		if rem-spin >= minSleep {
			nanosleep(rem - spin)
			continue
		}
		if rem > 20*time.Microsecond {
			runtime.Gosched()
		}
	}
}

// spinWindow is how long before a due time waitUntil stops sleeping.
const spinWindow = 100 * time.Microsecond

// minSleep is the shortest nanosleep waitUntilSpin takes.
const minSleep = 50 * time.Microsecond
