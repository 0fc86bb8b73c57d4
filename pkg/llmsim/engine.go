package llmsim

import (
	"sync"
	"sync/atomic"
	"time"
)

// wheelSlots is the number of buckets of the timing wheel (a power of two).
// With the default 1 ms tick the wheel spans 4.096 s; later deadlines stay
// in their bucket and are skipped until their round comes.
const wheelSlots = 4096

// Sequence states, in seq.state.
const (
	stateQueued  int32 = iota // submitted, waiting for a batch slot
	stateRunning              // in the batch
	stateDropped              // abandoned by its client while queued
)

// seq is one request inside the engine. Fields above the line are set before
// submit and read-only afterwards; engine fields belong to the goroutine
// that calls advance; the atomics are shared with the handler goroutine.
type seq struct {
	arrival     int64 // virtual ns
	prompt      int
	outLen      int   // tokens to generate
	need        int   // KV tokens reserved: prompt + outLen
	stallBefore int   // token index whose gap is lengthened (0: none)
	stallNs     int64 // length of that stall
	stream      bool  // wake the handler at every token, not only at the end
	record      bool  // keep every token's virtual time in times
	eos         bool  // finishes on a natural EOS (finish_reason "stop")

	// engine-owned
	admitAt, firstAt, doneAt int64
	deadline, prevAt         int64
	emitted                  int
	wnext                    *seq
	times                    []int64

	state     atomic.Int32 // stateQueued → stateRunning, or → stateDropped
	released  atomic.Int32 // tokens the handler may send
	relAt     atomic.Int64 // virtual time of the latest released token
	done      atomic.Bool  // the engine is finished with the sequence
	cancelled atomic.Bool  // the client went away
	notify    chan struct{}
}

// newSeq returns a sequence ready to submit.
func newSeq(prompt, outLen int) *seq {
	return &seq{prompt: prompt, outLen: outLen, need: prompt + outLen, notify: make(chan struct{}, 1)}
}

// wake signals the handler without blocking; one pending signal is enough
// because the handler reads the released count, not the signals.
func (s *seq) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// engine is the continuous-batching scheduler. It is a discrete-event model
// in virtual nanoseconds: a sequence waits in a FIFO queue until the batch
// has a free slot (running < MaxNumSeqs) and KV room for prompt + output; is
// then prefilled, one prompt at a time at PrefillTokensPerSec; emits its
// first token when its prefill ends; and then one token every
// ITL(running) = BaseITL + PerSeqITL × running, where running is the batch
// size when the previous token was emitted. Token deadlines live in a timing
// wheel whose buckets are one tick wide, so each tick costs O(tokens due),
// not O(streams). advance(now) fires every deadline of the buckets that
// ended by now; the virtual times recorded stay exact (each gap is added to
// the previous deadline, never to the wall clock), only the release is
// quantised to the tick.
//
// One goroutine (the server loop, or a test) owns the engine and calls
// advance. Handlers never take a lock the engine holds for long: submit
// appends to a small inbox, cancel is an atomic flag, and gauges and
// counters are atomics. (A shared mutex here convoys under load: with
// thousands of runnable goroutines, each hand-off waits for the next owner
// to be scheduled.)
type engine struct {
	prof Profile
	itlB int64 // BaseITL in ns
	itlS int64 // PerSeqITL in ns
	res  int64 // bucket width (tick) in ns

	inMu         sync.Mutex
	inbox, spare []*seq // submitted, not yet seen by advance

	wheel         [wheelSlots]*seq
	next          int64 // first bucket not yet processed
	inWheel       int
	queue         []*seq // FIFO of waiting sequences, from qhead
	qhead         int
	running       int
	kvUsed        int
	prefillFreeAt int64

	gRunning, gWaiting, gKV atomic.Int64 // published gauges
	m                       engineCounters
}

// newEngine returns an engine for prof whose buckets are res ns wide.
func newEngine(prof Profile, res int64) *engine {
	if res <= 0 {
		res = int64(DefaultTick)
	}
	return &engine{prof: prof, itlB: int64(prof.BaseITL), itlS: int64(prof.PerSeqITL), res: res, m: newEngineCounters()}
}

// submit queues s, which arrived at virtual time s.arrival; the next
// advance admits it (at its arrival time if the batch has room). Safe for
// concurrent use.
func (e *engine) submit(s *seq) {
	e.gWaiting.Add(1)
	e.inMu.Lock()
	e.inbox = append(e.inbox, s)
	e.inMu.Unlock()
}

// cancel marks s as abandoned by its client. A queued sequence leaves the
// waiting count at once; a running one frees its slot at its next deadline.
// Safe for concurrent use.
func (e *engine) cancel(s *seq) {
	s.cancelled.Store(true)
	if s.state.CompareAndSwap(stateQueued, stateDropped) {
		e.gWaiting.Add(-1)
	}
}

// drainInbox moves submitted sequences to the queue and admits what fits.
func (e *engine) drainInbox() {
	e.inMu.Lock()
	in := e.inbox
	e.inbox, e.spare = e.spare[:0], in
	e.inMu.Unlock()
	for i, s := range in {
		e.queue = append(e.queue, s)
		in[i] = nil
		e.admit(s.arrival)
	}
}

// admit moves sequences from the head of the queue into the batch while
// they fit, at virtual time t (a sequence is never admitted before it
// arrives). Admission is strictly FIFO: a head that does not fit blocks
// those behind it.
func (e *engine) admit(t int64) {
	for e.qhead < len(e.queue) {
		s := e.queue[e.qhead]
		if s.state.Load() == stateQueued && (e.running >= e.prof.MaxNumSeqs || e.kvUsed+s.need > e.prof.KVCacheTokens) {
			break
		}
		e.popQueue()
		if !s.state.CompareAndSwap(stateQueued, stateRunning) { // dropped by its client
			s.doneAt = t
			s.done.Store(true)
			s.wake()
			continue
		}
		e.gWaiting.Add(-1)
		e.running++
		e.kvUsed += s.need
		e.m.promptTokens.Add(uint64(s.prompt))
		s.admitAt = max(t, s.arrival)
		start := max(s.admitAt, e.prefillFreeAt)
		s.deadline = start + int64(e.prof.PrefillTime(s.prompt))
		e.prefillFreeAt = s.deadline
		e.insert(s)
	}
	e.gRunning.Store(int64(e.running))
	e.gKV.Store(int64(e.kvUsed))
}

// popQueue removes the queue head, compacting the slice now and then.
func (e *engine) popQueue() {
	e.queue[e.qhead] = nil
	e.qhead++
	if e.qhead == len(e.queue) {
		e.queue, e.qhead = e.queue[:0], 0
	} else if e.qhead >= 1024 && e.qhead*2 >= len(e.queue) {
		n := copy(e.queue, e.queue[e.qhead:])
		e.queue, e.qhead = e.queue[:n], 0
	}
}

// insert puts s in the bucket of its deadline (or the next unprocessed one).
func (e *engine) insert(s *seq) {
	b := max(s.deadline/e.res, e.next)
	i := b & (wheelSlots - 1)
	s.wnext = e.wheel[i]
	e.wheel[i] = s
	e.inWheel++
}

// advance admits new submissions and fires every deadline in the buckets
// that ended at or before now. With a positive budget it stops after the
// bucket during which the budget of wall time ran out and reports whether
// it is behind (due buckets left); see Server.loop.
func (e *engine) advance(now int64, budget time.Duration) (behind bool) {
	e.drainInbox()
	end := now / e.res
	var start time.Time
	if budget > 0 {
		start = time.Now()
	}
	for ; e.next < end; e.next++ {
		if budget > 0 && time.Since(start) > budget {
			return true
		}
		if e.inWheel == 0 {
			e.next = end
			break
		}
		i := e.next & (wheelSlots - 1)
		var later *seq
		for e.wheel[i] != nil {
			list := e.wheel[i]
			e.wheel[i] = nil
			for s := list; s != nil; {
				nx := s.wnext
				if s.deadline/e.res > e.next { // a later round of the wheel
					s.wnext, later = later, s
				} else {
					e.inWheel--
					e.fire(s)
				}
				s = nx
			}
		}
		e.wheel[i] = later
	}
	return false
}

// fire handles the deadline of s: its next token, or its removal if the
// client went away.
func (e *engine) fire(s *seq) {
	t := s.deadline
	if s.cancelled.Load() {
		e.finish(s, t)
		return
	}
	s.emitted++
	if s.record {
		s.times = append(s.times, t)
	}
	if s.emitted == 1 {
		s.firstAt = t
		e.m.ttft.observe(t - s.arrival)
	} else {
		e.m.itl.observe(t - s.prevAt)
	}
	s.prevAt = t
	e.m.generationTokens.Add(1)
	last := s.emitted >= s.outLen
	if last { // leave the batch before the handler can see the last token
		if s.eos {
			e.m.successStop.Add(1)
		} else {
			e.m.successLength.Add(1)
		}
		e.leave(s)
	}
	s.relAt.Store(t)
	s.released.Store(int32(s.emitted))
	if last {
		e.done(s, t)
		return
	}
	if s.stream {
		s.wake()
	}
	gap := e.itlB + e.itlS*int64(e.running)
	if s.emitted+1 == s.stallBefore {
		gap += s.stallNs
	}
	s.deadline = t + gap
	e.insert(s)
}

// finish removes s from the batch at virtual time t and admits waiters.
func (e *engine) finish(s *seq, t int64) {
	e.leave(s)
	e.done(s, t)
}

// leave frees the batch slot and KV reservation of s.
func (e *engine) leave(s *seq) {
	e.running--
	e.kvUsed -= s.need
	e.gRunning.Store(int64(e.running))
	e.gKV.Store(int64(e.kvUsed))
}

// done tells the handler that s is finished and admits waiters at t.
func (e *engine) done(s *seq, t int64) {
	s.doneAt = t
	s.done.Store(true)
	s.wake()
	e.admit(t)
}

// wakeAll wakes the handler of every submitted, queued or running sequence.
// Only the engine's owner may call it.
func (e *engine) wakeAll() {
	e.inMu.Lock()
	for _, s := range e.inbox {
		s.wake()
	}
	e.inMu.Unlock()
	for _, s := range e.queue[e.qhead:] {
		s.wake()
	}
	for _, head := range e.wheel {
		for s := head; s != nil; s = s.wnext {
			s.wake()
		}
	}
}

// engineSnapshot is a copy of the engine's gauges and counters.
type engineSnapshot struct {
	running, waiting, kvUsed       int
	promptTokens, generationTokens uint64
	successStop, successLength     uint64
	ttft, itl                      histogram
}

// snapshot reads the gauges and counters; safe for concurrent use. The
// values are read one by one, so they may be a tick apart.
func (e *engine) snapshot() engineSnapshot {
	return engineSnapshot{
		running: int(e.gRunning.Load()), waiting: int(e.gWaiting.Load()), kvUsed: int(e.gKV.Load()),
		promptTokens: e.m.promptTokens.Load(), generationTokens: e.m.generationTokens.Load(),
		successStop: e.m.successStop.Load(), successLength: e.m.successLength.Load(),
		ttft: e.m.ttft.snapshot(), itl: e.m.itl.snapshot(),
	}
}

// idle reports whether nothing is scheduled or submitted. Only the engine's
// owner may call it.
func (e *engine) idle() bool {
	e.inMu.Lock()
	defer e.inMu.Unlock()
	return e.inWheel == 0 && len(e.inbox) == 0
}
