// Package clocksync estimates the offset between two clocks from heartbeat
// round trips, NTP style: each sample gives an offset whose error is at most
// half its round-trip time, so the sample with the smallest round trip in a
// recent window is kept.
package clocksync

import (
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"

	"sync"
	"time"
)

// Sample is one round trip: local send t0, remote receive t1, remote send
// t2, local receive t3, all in Unix nanoseconds of their own clocks.
type Sample struct{ T0, T1, T2, T3 int64 }

// RTT is the network round trip, excluding the remote's hold time.
func (s Sample) RTT() time.Duration { return time.Duration((s.T3 - s.T0) - (s.T2 - s.T1)) }

// Offset is the remote clock minus the local clock.
func (s Sample) Offset() time.Duration { return time.Duration(((s.T1 - s.T0) + (s.T2 - s.T3)) / 2) }

// Estimator keeps the minimum-RTT sample of the last Window samples.
type Estimator struct {
	mu      sync.Mutex
	window  int
	samples []Sample
}

// New returns an estimator over the last window samples (at least 1).
func New(window int) *Estimator { return &Estimator{window: max(window, 1)} }

// Add records a sample; samples with a negative RTT (clock steps) are
// ignored. It reports whether the sample was kept.
func (e *Estimator) Add(s Sample) bool {
	if s.RTT() < 0 || s.T0 == 0 || s.T1 == 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.samples = append(e.samples, s)
	if len(e.samples) > e.window {
		e.samples = e.samples[len(e.samples)-e.window:]
	}
	return true
}

// Best returns the minimum-RTT sample and whether any exists.
func (e *Estimator) Best() (Sample, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.samples) == 0 {
		return Sample{}, false
	}
	best := e.samples[0]
	for _, s := range e.samples[1:] {
		if s.RTT() < best.RTT() {
			best = s
		}
	}
	return best, true
}

// Offset is the best sample's offset (remote − local) and its error bound
// (half its RTT).
func (e *Estimator) Offset() (offset, bound time.Duration, ok bool) {
	b, ok := e.Best()
	if !ok {
		return 0, 0, false
	}
	return b.Offset(), b.RTT() / 2, true
}

// Exchange is one side of a heartbeat exchange. Each outgoing heartbeat
// echoes the peer's last one (its send time and when it arrived here), so
// every incoming heartbeat that echoes ours closes a round trip: our send,
// the peer's receive, the peer's send, our receive.
type Exchange struct {
	mu       sync.Mutex
	peerSent int64 // sent_unix_nano of the peer's last heartbeat
	peerRecv int64 // when it arrived here
	est      *Estimator
}

// NewExchange returns an exchange keeping the minimum-RTT sample of the last
// window round trips.
func NewExchange(window int) *Exchange { return &Exchange{est: New(window)} }

// Outgoing builds the next heartbeat, sent at now (Unix nanoseconds).
func (x *Exchange) Outgoing(now int64) *pb.Heartbeat {
	x.mu.Lock()
	defer x.mu.Unlock()
	return &pb.Heartbeat{SentUnixNano: now, EchoUnixNano: x.peerSent, EchoReceivedUnixNano: x.peerRecv}
}

// Incoming records a heartbeat received at at (Unix nanoseconds).
func (x *Exchange) Incoming(hb *pb.Heartbeat, at int64) {
	x.mu.Lock()
	x.peerSent, x.peerRecv = hb.GetSentUnixNano(), at
	x.mu.Unlock()
	if hb.GetEchoUnixNano() != 0 {
		x.est.Add(Sample{T0: hb.GetEchoUnixNano(), T1: hb.GetEchoReceivedUnixNano(), T2: hb.GetSentUnixNano(), T3: at})
	}
}

// Offset is the peer's clock minus this side's, with its error bound.
func (x *Exchange) Offset() (offset, bound time.Duration, ok bool) { return x.est.Offset() }
