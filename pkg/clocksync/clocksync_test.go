package clocksync

import (
	"testing"
	"time"
)

func TestOffsetFromSymmetricRoundTrip(t *testing.T) {
	// Remote is 500 ms ahead; 10 ms each way; remote holds 1 ms.
	const ms = int64(time.Millisecond)
	s := Sample{T0: 1000 * ms, T1: 1510 * ms, T2: 1511 * ms, T3: 1021 * ms}
	if s.RTT() != 20*time.Millisecond {
		t.Fatalf("rtt %v", s.RTT())
	}
	if s.Offset() != 500*time.Millisecond {
		t.Fatalf("offset %v", s.Offset())
	}
}

func TestEstimatorKeepsMinimumRTTInWindow(t *testing.T) {
	const ms = int64(time.Millisecond)
	e := New(3)
	// true offset 100 ms; the slow sample's asymmetric delay skews it.
	slow := Sample{T0: 0 + 1, T1: 190*ms + 1, T2: 190*ms + 1, T3: 100*ms + 1}
	fast := Sample{T0: 1000 * ms, T1: 1102 * ms, T2: 1102 * ms, T3: 1004 * ms}
	e.Add(slow)
	e.Add(fast)
	off, bound, ok := e.Offset()
	if !ok || off != 100*time.Millisecond || bound != 2*time.Millisecond {
		t.Fatalf("got %v ±%v (%v)", off, bound, ok)
	}
	// After three more samples the fast one leaves the window.
	for i := 0; i < 3; i++ {
		e.Add(Sample{T0: 2000 * ms, T1: 2110 * ms, T2: 2110 * ms, T3: 2020 * ms})
	}
	if b, _ := e.Best(); b.RTT() != 20*time.Millisecond {
		t.Fatalf("window not applied: %v", b.RTT())
	}
	if e.Add(Sample{T0: 10, T1: 5, T2: 5, T3: 5}) {
		t.Fatal("negative RTT sample accepted")
	}
}
