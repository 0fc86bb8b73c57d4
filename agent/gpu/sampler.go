package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Sampling defaults and limits.
const (
	// DefaultInterval is the sampling interval New uses for 0.
	DefaultInterval = time.Second
	// MinInterval is the shortest interval New accepts.
	MinInterval = 100 * time.Millisecond
	// DefaultSamplesPerDevice sizes the ring when New gets ringSize 0:
	// ten minutes of samples at the default interval.
	DefaultSamplesPerDevice = 600
)

// Option configures a Sampler.
type Option func(*Sampler)

// WithClock makes the sampler stamp samples with now() instead of
// time.Now(); tests pass a fake clock.
func WithClock(now func() time.Time) Option {
	return func(s *Sampler) { s.now = now }
}

// WithTicks makes Run take a sample on every value received from ticks
// instead of on a time.Ticker of the interval; Run returns when ticks is
// closed. Tests use it to drive Run by hand.
func WithTicks(ticks <-chan time.Time) Option {
	return func(s *Sampler) { s.ticks = ticks }
}

// Sampler polls a Backend at a fixed interval into a bounded ring buffer of
// samples. Its methods are safe for concurrent use.
type Sampler struct {
	backend  Backend
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	ticks    <-chan time.Time

	tickMu sync.Mutex    // serialises Tick
	state  []deviceState // per device, parallel to inv.Devices; under tickMu

	mu     sync.RWMutex
	inv    Inventory
	ring   []Sample // capacity fixed at New
	head   int      // index of the oldest sample
	n      int      // samples held
	latest []Sample // per device, parallel to inv.Devices; Time zero = none
}

// deviceState is the sampler's view of one device's health.
type deviceState struct {
	index   int // Device.Index
	lost    bool
	failing bool // the last sample came with an error
}

// New returns a sampler of backend's devices. interval 0 means
// DefaultInterval, and an interval below MinInterval fails with ErrInterval.
// ringSize is the number of samples kept over all devices; 0 means
// DefaultSamplesPerDevice per device. A nil logger discards log lines.
func New(backend Backend, interval time.Duration, ringSize int, logger *slog.Logger, opts ...Option) (*Sampler, error) {
	if interval == 0 {
		interval = DefaultInterval
	}
	if interval < MinInterval {
		return nil, fmt.Errorf("%w: %v (minimum %v)", ErrInterval, interval, MinInterval)
	}
	if ringSize < 0 {
		return nil, fmt.Errorf("gpu: negative ring size %d", ringSize)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	inv := backend.Inventory().clone()
	if ringSize == 0 {
		ringSize = max(1, len(inv.Devices)) * DefaultSamplesPerDevice
	}
	s := &Sampler{
		backend:  backend,
		interval: interval,
		log:      logger,
		now:      time.Now,
		inv:      inv,
		ring:     make([]Sample, ringSize),
		state:    make([]deviceState, len(inv.Devices)),
		latest:   make([]Sample, len(inv.Devices)),
	}
	for i, d := range inv.Devices {
		s.state[i] = deviceState{index: d.Index, lost: d.Lost}
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Interval returns the sampling interval.
func (s *Sampler) Interval() time.Duration { return s.interval }

// Run samples at once and then every interval until ctx is done (or the
// WithTicks channel is closed). It returns at once when the inventory has no
// devices. Run does not close the backend.
func (s *Sampler) Run(ctx context.Context) {
	if len(s.state) == 0 {
		s.log.Debug("gpu sampler: no devices, not sampling")
		return
	}
	ticks := s.ticks
	if ticks == nil {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		ticks = t.C
	}
	s.Tick()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ticks:
			if !ok {
				return
			}
			s.Tick()
		}
	}
}

// Tick takes one sample of every device that is not lost, stamped with the
// clock's current time. Run calls it; tests may call it directly.
//
// A device whose sample fails with ErrDeviceLost is marked lost in the
// inventory, gets one sample with Lost set, and is skipped from then on. Any
// other error is logged once per run of failures; the fields that could be
// read are kept.
func (s *Sampler) Tick() {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	now := s.now()
	for pos := range s.state {
		st := &s.state[pos]
		if st.lost {
			continue
		}
		index := st.index
		smp, err := s.backend.Sample(index, now)
		switch {
		case errors.Is(err, ErrDeviceLost):
			st.lost = true
			s.log.Warn("gpu lost; no longer sampled", "index", index, "err", err)
			s.record(pos, Sample{Time: now, Index: index, Lost: true}, err.Error())
			continue
		case err != nil:
			if !st.failing {
				s.log.Warn("gpu sample failed", "index", index, "err", err)
			}
			st.failing = true
			if smp.Fields == 0 {
				continue
			}
		case st.failing:
			st.failing = false
			s.log.Info("gpu sampling recovered", "index", index)
		}
		smp.Time, smp.Index, smp.Lost = now, index, false
		s.record(pos, smp, "")
	}
}

// record appends smp to the ring and, for a Lost sample, marks the device lost.
func (s *Sampler) record(pos int, smp Sample, lostReason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if smp.Lost {
		s.inv.Devices[pos].Lost = true
		s.inv.Devices[pos].LostReason = lostReason
	}
	s.latest[pos] = smp
	if s.n < len(s.ring) {
		s.ring[(s.head+s.n)%len(s.ring)] = smp
		s.n++
		return
	}
	s.ring[s.head] = smp
	s.head = (s.head + 1) % len(s.ring)
}

// each calls fn for the held samples, oldest first, under the read lock.
func (s *Sampler) each(fn func(Sample)) {
	for i := 0; i < s.n; i++ {
		fn(s.ring[(s.head+i)%len(s.ring)])
	}
}

// Samples returns the held samples taken strictly after since, oldest first.
// Pass the Time of the last sample seen to read only newer ones.
func (s *Sampler) Samples(since time.Time) []Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Sample
	s.each(func(smp Sample) {
		if smp.Time.After(since) {
			out = append(out, smp)
		}
	})
	return out
}

// Between returns the held samples taken in [from, to), oldest first.
func (s *Sampler) Between(from, to time.Time) []Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Sample
	s.each(func(smp Sample) {
		if !smp.Time.Before(from) && smp.Time.Before(to) {
			out = append(out, smp)
		}
	})
	return out
}

// Latest returns the most recent sample of each device that has one, in
// inventory order. A lost device's latest sample has Lost set.
func (s *Sampler) Latest() []Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Sample, 0, len(s.latest))
	for _, smp := range s.latest {
		if !smp.Time.IsZero() {
			out = append(out, smp)
		}
	}
	return out
}

// Inventory returns the backend's inventory with the devices found lost
// since marked Lost.
func (s *Sampler) Inventory() Inventory {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.inv.clone()
}

// Window aggregates each device over [from, to): see Aggregate. Besides the
// samples inside the window it passes Aggregate, per device, the last sample
// before from and the first at or after to, so that the energy of the whole
// window is counted even when samples are as far apart as the window is long.
func (s *Sampler) Window(from, to time.Time) []WindowStats {
	s.mu.RLock()
	before := map[int]Sample{}
	after := map[int]Sample{}
	var in []Sample
	s.each(func(smp Sample) {
		switch {
		case smp.Time.Before(from):
			before[smp.Index] = smp
		case smp.Time.Before(to):
			in = append(in, smp)
		default:
			if _, ok := after[smp.Index]; !ok {
				after[smp.Index] = smp
			}
		}
	})
	s.mu.RUnlock()
	all := make([]Sample, 0, len(before)+len(in)+len(after))
	for _, smp := range before {
		all = append(all, smp)
	}
	all = append(all, in...)
	for _, smp := range after {
		all = append(all, smp)
	}
	return Aggregate(all, from, to)
}
