package shard

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// tickEvery is how often the open window is checked for closing and the
// live send counters are moved into it.
const tickEvery = 100 * time.Millisecond

// Run prepares and runs one shard: New, then Executor.Run.
func Run(ctx context.Context, a Assignment, opts Options) (*Result, error) {
	e, err := New(a, opts)
	if err != nil {
		return nil, err
	}
	return e.Run(ctx)
}

// Run waits until the assignment's StartAt, runs the stage and returns
// when every request has ended. Each closed 1-second window goes to
// Options.Emit as it closes; the last, partial one is flushed before Run
// returns, after the final counters (sends, late sends, dropped sends,
// generator CPU) were added to it.
//
// Cancelling ctx stops new sends at once, lets requests in flight finish
// for Options.Grace, then cancels them; Run then returns the partial
// Result with Stopped set and a nil error. A cancel before StartAt returns
// an empty stopped Result. Run fails with ErrStartPassed when StartAt is
// more than Options.MaxStartLag in the past and the level has other shards
// to keep in step with. Call Run once.
func (e *Executor) Run(ctx context.Context) (*Result, error) {
	res := &Result{Source: e.source, Warmup: e.a.Warmup}
	if err := e.waitStart(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrStartPassed) {
			res.Stopped = true
			return res, nil
		}
		return nil, err
	}
	if e.empty {
		now := time.Now()
		res.Start, res.End = now, now
		if !e.a.Warmup {
			res.Total = metrics.NewWindow(e.source, 0, 0, 0)
		}
		return res, nil
	}
	acc := metrics.NewAccumulator(e.source, e.goodput, 0)
	em := newEmitter(e.opts.Emit)
	if !e.a.Warmup {
		acc.OnWindow = func(w *metrics.Window) { em.push(w) } // under acc's lock: in order
	}
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	e.doer.base = base
	execCtx, cancelExec := context.WithCancel(context.Background())
	defer cancelExec()
	unwatch := e.watchStop(ctx, cancelExec, cancelBase)
	var counted sendCounts
	stopTicker := startTicker(acc, &e.prog, &counted)
	phase := metrics.PhaseProfiling
	if e.a.Warmup {
		phase = metrics.PhaseWarmup
	}
	ex := &loadgen.Executor{Doer: e.doer, Sink: loadgen.SinkFunc(func(r *metrics.RequestRecord) { acc.Add(r) }), Progress: &e.prog}
	cpu0, wall0 := cpuTime(), time.Now()
	stage, runErr := ex.Run(execCtx, e.stage, phase)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	res.Stopped = e.doer.stopping.Load()
	unwatch()
	stopTicker()
	if runErr != nil && !(res.Stopped && errors.Is(runErr, context.Canceled)) {
		acc.Flush()
		em.close()
		return nil, fmt.Errorf("shard %s: %w", e.source, runErr)
	}
	counted.move(&e.prog, acc)
	acc.Count(metrics.CounterGeneratorCPU, int64(cpu), metrics.Now())
	acc.Flush()
	res.Windows = em.close()
	e.fill(res, acc, stage, cpu, wall)
	return res, nil
}

// watchStop arranges the graceful stop when ctx ends: no new sends
// (cancelExec), in-flight requests cut when Grace is over (cancelBase).
// The returned function ends the watch once the stage is over.
func (e *Executor) watchStop(ctx context.Context, cancelExec, cancelBase context.CancelFunc) func() {
	done := make(chan struct{})
	unwatch := context.AfterFunc(ctx, func() {
		e.doer.stopping.Store(true)
		cancelExec()
		if e.opts.Grace < 0 {
			cancelBase()
			return
		}
		t := time.NewTimer(e.opts.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelBase()
		case <-done:
		}
	})
	return func() {
		unwatch()
		close(done)
	}
}

// startTicker moves the live send counters into the open window and
// closes it once its second is over, every tickEvery, until stopped.
func startTicker(acc *metrics.Accumulator, prog *loadgen.Progress, counted *sendCounts) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				counted.move(prog, acc)
				acc.Tick(metrics.Now())
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// fill sets the Result's counts, times and self-check.
func (e *Executor) fill(res *Result, acc *metrics.Accumulator, stage loadgen.StageResult, cpu, wall time.Duration) {
	res.Stage = stage
	res.Start, res.End = time.Unix(0, stage.StartNs), time.Unix(0, stage.EndNs)
	res.Sent, res.LateSends, res.Dropped = stage.Sent, stage.Late, stage.Dropped
	lagP99 := 0.0
	if e.a.Warmup {
		res.Cancelled = stage.Cancelled
		res.Errors = e.prog.Errors.Load()
		res.OK = e.prog.Done.Load() - res.Errors - res.Cancelled
	} else {
		res.Total = acc.Total()
		res.OK = res.Total.Counters[metrics.CounterOK]
		res.Errors = res.Total.Counters[metrics.CounterError]
		res.Cancelled = res.Total.Counters[metrics.CounterCancelled]
		if h, ok := res.Total.Hists[metrics.ScheduleLag]; ok && h.Count > 0 {
			lagP99 = h.Stats().Pct(99)
		}
	}
	res.Saturation = metrics.CheckSaturation(metrics.SaturationInput{TargetRate: e.targetRate, Sent: stage.Sent,
		SendSeconds: stage.SendSeconds(), LagP99Ms: lagP99, CPUSeconds: cpu.Seconds(), WallSeconds: wall.Seconds(),
		NumCPU: runtime.NumCPU(), LateSends: stage.Late, Dropped: stage.Dropped, CapLimited: stage.CapLimited})
}

// waitStart blocks until StartAt; it fails at once with ErrStartPassed when
// StartAt is more than MaxStartLag ago, and with ctx's error on cancel. A
// shard alone in its level has no one to start with, so it starts late
// rather than not at all.
func (e *Executor) waitStart(ctx context.Context) error {
	at := e.a.StartAt
	if at.IsZero() {
		return ctx.Err()
	}
	if late := time.Since(at); late > e.opts.MaxStartLag && e.a.Shard.Of > 1 {
		return fmt.Errorf("%w by %.1fs: clocks are off or the assignment was late", ErrStartPassed, late.Seconds())
	}
	for {
		wait := time.Until(at)
		if wait <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// emitter numbers closed windows 1, 2, 3, … and hands them to Emit on a
// goroutine of its own, in order, so that a slow Emit (a full send buffer,
// a window spilled to disk) never holds the accumulator's lock and with it
// the request path.
type emitter struct {
	emit func(seq uint64, w *metrics.Window)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*metrics.Window
	seq    uint64
	closed bool
	done   chan struct{}
}

// newEmitter starts an emitter; emit may be nil (windows are only counted).
func newEmitter(emit func(seq uint64, w *metrics.Window)) *emitter {
	e := &emitter{emit: emit, done: make(chan struct{})}
	e.cond = sync.NewCond(&e.mu)
	go e.loop()
	return e
}

// push numbers w (setting w.Seq) and queues it.
func (e *emitter) push(w *metrics.Window) {
	e.mu.Lock()
	e.seq++
	w.Seq = e.seq
	e.queue = append(e.queue, w)
	e.mu.Unlock()
	e.cond.Signal()
}

// loop delivers queued windows until close.
func (e *emitter) loop() {
	defer close(e.done)
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.cond.Wait()
		}
		batch := e.queue
		e.queue = nil
		closed := e.closed
		e.mu.Unlock()
		for _, w := range batch {
			if e.emit != nil {
				e.emit(w.Seq, w)
			}
		}
		if closed && len(batch) == 0 {
			return
		}
	}
}

// close waits until every queued window is delivered and returns the last
// sequence number. Nothing may be pushed after close.
func (e *emitter) close() uint64 {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cond.Signal()
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}

// sendCounts moves the live send counters into the open window, so every
// window says how many requests were sent (late, dropped) in its second.
type sendCounts struct{ sent, late, dropped int64 }

// move adds what the counters gained since the last call.
func (c *sendCounts) move(p *loadgen.Progress, acc *metrics.Accumulator) {
	now := metrics.Now()
	for _, f := range []struct {
		name string
		cur  int64
		last *int64
	}{{metrics.CounterSent, p.Sent.Load(), &c.sent}, {metrics.CounterLateSends, p.Late.Load(), &c.late},
		{metrics.CounterDroppedSends, p.Dropped.Load(), &c.dropped}} {
		if d := f.cur - *f.last; d > 0 {
			acc.Count(f.name, d, now)
			*f.last = f.cur
		}
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
