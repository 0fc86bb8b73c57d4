package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manual clock for deterministic sampler tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) Count(s string) int { return strings.Count(l.String(), s) }

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// fakeBackend answers samples through a scripted function and counts calls.
type fakeBackend struct {
	inv    Inventory
	sample func(index, call int, now time.Time) (Sample, error)

	mu    sync.Mutex
	calls map[int]int
}

func newFakeBackend(n int, sample func(index, call int, now time.Time) (Sample, error)) *fakeBackend {
	b := &fakeBackend{inv: Inventory{Source: "fake"}, sample: sample, calls: map[int]int{}}
	for i := range n {
		b.inv.Devices = append(b.inv.Devices, Device{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Name: "NVIDIA L4"})
	}
	return b
}

func (b *fakeBackend) Inventory() Inventory { return b.inv.clone() }
func (b *fakeBackend) Close() error         { return nil }

func (b *fakeBackend) Sample(index int, now time.Time) (Sample, error) {
	b.mu.Lock()
	b.calls[index]++
	call := b.calls[index]
	b.mu.Unlock()
	return b.sample(index, call, now)
}

func (b *fakeBackend) Calls(index int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[index]
}

// powerSample is a healthy sample with GPU utilisation and power.
func powerSample(util, watts float64) (Sample, error) {
	return Sample{Fields: FieldGPUUtil | FieldPower, GPUUtil: util, PowerWatts: watts}, nil
}

func mustNew(t *testing.T, b Backend, ring int, logger *slog.Logger, clk *fakeClock, opts ...Option) *Sampler {
	t.Helper()
	s, err := New(b, time.Second, ring, logger, append([]Option{WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewInterval(t *testing.T) {
	b := newFakeBackend(2, nil)
	for _, tc := range []struct {
		in, want time.Duration
		err      bool
	}{
		{0, DefaultInterval, false},
		{MinInterval, MinInterval, false},
		{5 * time.Second, 5 * time.Second, false},
		{MinInterval - time.Millisecond, 0, true},
		{-time.Second, 0, true},
	} {
		s, err := New(b, tc.in, 0, nil)
		if tc.err {
			if !errors.Is(err, ErrInterval) {
				t.Errorf("New(%v) error = %v, want ErrInterval", tc.in, err)
			}
			continue
		}
		if err != nil || s.Interval() != tc.want {
			t.Errorf("New(%v) = %v, %v; want interval %v", tc.in, s.Interval(), err, tc.want)
			continue
		}
		if got := len(s.ring); got != 2*DefaultSamplesPerDevice {
			t.Errorf("default ring size = %d, want %d", got, 2*DefaultSamplesPerDevice)
		}
	}
	if _, err := New(b, 0, -1, nil); err == nil {
		t.Error("New with a negative ring size succeeded")
	}
}

func TestRingBoundedAndReads(t *testing.T) {
	clk := newFakeClock()
	b := newFakeBackend(1, func(_, call int, _ time.Time) (Sample, error) { return powerSample(float64(call), 100) })
	s := mustNew(t, b, 5, nil, clk)
	for range 8 {
		s.Tick()
		clk.Advance(time.Second)
	}
	all := s.Samples(time.Time{})
	if len(all) != 5 {
		t.Fatalf("ring holds %d samples, want 5", len(all))
	}
	for i, smp := range all {
		if want := t0.Add(time.Duration(3+i) * time.Second); !smp.Time.Equal(want) || smp.GPUUtil != float64(4+i) {
			t.Errorf("sample %d = %v util %v, want %v util %v", i, smp.Time, smp.GPUUtil, want, 4+i)
		}
	}
	if got := s.Samples(t0.Add(5 * time.Second)); len(got) != 2 {
		t.Errorf("Samples(since t5) = %d samples, want 2 (strictly after)", len(got))
	}
	if got := s.Between(t0.Add(4*time.Second), t0.Add(6*time.Second)); len(got) != 2 ||
		!got[0].Time.Equal(t0.Add(4*time.Second)) {
		t.Errorf("Between(t4, t6) = %+v, want the samples at t4 and t5", got)
	}
	latest := s.Latest()
	if len(latest) != 1 || latest[0].GPUUtil != 8 || latest[0].Index != 0 {
		t.Errorf("Latest = %+v, want the 8th sample of device 0", latest)
	}
}

func TestDeviceLostMidRun(t *testing.T) {
	clk := newFakeClock()
	logger, logs := newTestLogger()
	b := newFakeBackend(3, func(index, call int, _ time.Time) (Sample, error) {
		if index == 1 && call >= 3 {
			return Sample{}, fmt.Errorf("%w: fell off the bus", ErrDeviceLost)
		}
		return powerSample(50, 200)
	})
	s := mustNew(t, b, 0, logger, clk)
	for range 6 {
		s.Tick()
		clk.Advance(time.Second)
	}
	if got := b.Calls(1); got != 3 {
		t.Errorf("lost device sampled %d times, want 3 (never after it was lost)", got)
	}
	for _, i := range []int{0, 2} {
		if got := b.Calls(i); got != 6 {
			t.Errorf("device %d sampled %d times, want 6", i, got)
		}
	}
	inv := s.Inventory()
	if d := inv.Devices[1]; !d.Lost || !strings.Contains(d.LostReason, "fell off the bus") {
		t.Errorf("inventory device 1 = %+v, want lost with the reason", d)
	}
	if inv.Devices[0].Lost || inv.Devices[2].Lost || inv.Usable() != 2 {
		t.Errorf("other devices lost: %+v", inv.Devices)
	}
	if b.Inventory().Devices[1].Lost {
		t.Error("sampler changed the backend's inventory")
	}
	latest := s.Latest()
	if len(latest) != 3 || !latest[1].Lost || latest[1].Fields != 0 || !latest[1].Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("Latest = %+v, want device 1's lost sample at t2", latest)
	}
	if n := logs.Count("gpu lost"); n != 1 {
		t.Errorf("logged the loss %d times, want 1:\n%s", n, logs)
	}
	win := s.Window(t0, t0.Add(10*time.Second))
	if len(win) != 3 || !win[1].Lost || win[0].Lost {
		t.Errorf("Window = %+v, want device 1 lost only", win)
	}
	// All devices lost: ticking goes on calling nothing.
	s2 := mustNew(t, newFakeBackend(1, func(int, int, time.Time) (Sample, error) { return Sample{}, ErrDeviceLost }), 0, nil, clk)
	for range 3 {
		s2.Tick()
	}
	if got := s2.backend.(*fakeBackend).Calls(0); got != 1 {
		t.Errorf("lost device sampled %d times, want 1", got)
	}
}

func TestFailingDeviceLogsOncePerRun(t *testing.T) {
	clk := newFakeClock()
	logger, logs := newTestLogger()
	b := newFakeBackend(2, func(index, call int, _ time.Time) (Sample, error) {
		switch {
		case index == 0 && call <= 3: // partial: power only
			return Sample{Fields: FieldPower, PowerWatts: 80}, fmt.Errorf("%w: utilization: ERROR_UNKNOWN", ErrPartialSample)
		case index == 1: // nothing readable, ever
			return Sample{}, fmt.Errorf("%w: everything: ERROR_UNKNOWN", ErrPartialSample)
		}
		return powerSample(10, 90)
	})
	s := mustNew(t, b, 0, logger, clk)
	for range 5 {
		s.Tick()
		clk.Advance(time.Second)
	}
	if n := logs.Count("gpu sample failed"); n != 2 {
		t.Errorf("failure logged %d times, want once per device:\n%s", n, logs)
	}
	if n := logs.Count("gpu sampling recovered"); n != 1 {
		t.Errorf("recovery logged %d times, want 1:\n%s", n, logs)
	}
	var dev0, dev1 int
	for _, smp := range s.Samples(time.Time{}) {
		switch smp.Index {
		case 0:
			dev0++
		case 1:
			dev1++
		}
	}
	if dev0 != 5 || dev1 != 0 {
		t.Errorf("kept %d samples of device 0 and %d of device 1, want 5 (partial ones too) and 0", dev0, dev1)
	}
	if inv := s.Inventory(); inv.Usable() != 2 {
		t.Errorf("failing device marked lost: %+v", inv.Devices)
	}
}

func TestRunWithTicks(t *testing.T) {
	clk := newFakeClock()
	b := newFakeBackend(2, func(int, int, time.Time) (Sample, error) { return powerSample(1, 1) })
	ticks := make(chan time.Time)
	s := mustNew(t, b, 0, nil, clk, WithTicks(ticks))
	done := make(chan struct{})
	go func() { s.Run(context.Background()); close(done) }()
	for range 3 {
		clk.Advance(time.Second)
		ticks <- time.Time{}
	}
	close(ticks)
	waitDone(t, done)
	if got := len(s.Samples(time.Time{})); got != 8 {
		t.Errorf("Run took %d samples, want 8 (2 devices × (1 at start + 3 ticks))", got)
	}
}

func TestRunStops(t *testing.T) {
	// Cancelled context: one sample at start, then return, with the real ticker.
	b := newFakeBackend(1, func(int, int, time.Time) (Sample, error) { return powerSample(1, 1) })
	s, err := New(b, MinInterval, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitDone(t, done)
	if got := b.Calls(0); got != 1 {
		t.Errorf("sampled %d times, want 1", got)
	}
	// No devices: Run returns at once without sampling.
	s, err = New(NewNone("test"), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { s.Run(context.Background()); close(done) }()
	waitDone(t, done)
	if len(s.Latest()) != 0 || len(s.Samples(time.Time{})) != 0 {
		t.Error("sampler without devices has samples")
	}
	if _, err := NewNone("test").Sample(0, t0); !errors.Is(err, ErrNoDevice) {
		t.Errorf("none backend Sample error = %v", err)
	}
}

func TestConcurrentReaders(t *testing.T) {
	clk := newFakeClock()
	sim := NewSimulated(SimSpec{Count: 4, Model: models[0]}, SimOptions{Load: func() float64 { return 0.5 }})
	ticks := make(chan time.Time)
	s := mustNew(t, sim, 16, nil, clk, WithTicks(ticks))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = s.Samples(t0)
				_ = s.Latest()
				_ = s.Inventory()
				_ = s.Window(t0, t0.Add(time.Hour))
			}
		})
	}
	for i := range 20 {
		clk.Advance(time.Second)
		if i == 10 {
			if err := sim.MarkLost(2); err != nil {
				t.Error(err)
			}
		}
		ticks <- time.Time{}
	}
	cancel()
	wg.Wait()
	if inv := s.Inventory(); !inv.Devices[2].Lost || inv.Usable() != 3 {
		t.Errorf("inventory = %+v, want device 2 lost", inv.Devices)
	}
}

func TestSamplerWindowSimulated(t *testing.T) {
	clk := newFakeClock()
	spec, err := ParseSimulated("2xL4")
	if err != nil {
		t.Fatal(err)
	}
	sim := NewSimulated(spec, SimOptions{Load: func() float64 { return 1 }})
	s := mustNew(t, sim, 0, nil, clk)
	for range 5 {
		s.Tick()
		clk.Advance(time.Second)
	}
	// Samples at t0..t4; the window [t1.5, t3.5) has samples t2 and t3
	// and gets energy from the segments on both sides.
	win := s.Window(t0.Add(1500*time.Millisecond), t0.Add(3500*time.Millisecond))
	if len(win) != 2 {
		t.Fatalf("Window = %+v, want 2 devices", win)
	}
	for _, w := range win {
		if w.Samples != 2 || w.GPUUtilMean != 100 || w.PowerMeanWatts != 72 {
			t.Errorf("device %d stats = %+v", w.Index, w)
		}
		if w.EnergySource != EnergyCounter || w.CoveredSeconds != 2 || !near(w.EnergyJoules, 144, 0.01) {
			t.Errorf("device %d energy = %v J from %q over %v s, want 144 J from the counter over 2 s",
				w.Index, w.EnergyJoules, w.EnergySource, w.CoveredSeconds)
		}
	}
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }
