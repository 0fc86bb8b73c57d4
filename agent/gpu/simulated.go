package gpu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// The simulated GPU model. For a device with load L in [0, 1] (the load
// callback's value, clamped; NaN counts as 0) and its Model's figures:
//
//	PowerWatts   = IdleWatts + (TDPWatts − IdleWatts) × L^SimPowerExponent
//	GPUUtil      = 100 × L
//	MemUtil      = 100 × L × SimMemUtilRatio
//	SMClockMHz   = MaxSMClockMHz when L ≥ SimIdleLoad, else IdleSMClockMHz
//	TemperatureC = SimAmbientC + SimTempRiseC × PowerWatts / TDPWatts
//	Throttle     = ["idle"] when L < SimIdleLoad, ["sw_power_cap"] when
//	               L ≥ SimPowerCapLoad, none otherwise
//	MemUsedBytes = the memory callback's value, else
//	               MemoryUsedFraction × MemoryBytes
//	Energy       = the integral of PowerWatts over the sample times, by
//	               trapezoids, in millijoules from the device's first sample
//
// The exponent below 1 makes power rise fast at low load, as on real boards
// where any running kernel lifts clocks and voltage. Temperature follows
// power at once (no thermal lag).
const (
	SimPowerExponent = 0.8
	SimMemUtilRatio  = 0.8
	SimAmbientC      = 30.0
	SimTempRiseC     = 45.0
	SimIdleLoad      = 0.01
	SimPowerCapLoad  = 0.99
)

// AllDevices, passed as the index to SetLoad or SetMemoryUsed, applies the
// callback to every simulated device.
const AllDevices = -1

// SimOptions configures NewSimulated. The zero value gives idle GPUs with no
// memory used and UUIDs derived from an empty seed.
type SimOptions struct {
	// Seed, typically the host name, makes UUIDs differ between machines
	// and repeat across restarts of the same one.
	Seed string
	// Load returns the load of every device in [0, 1]; nil means idle.
	// SetLoad replaces it, per device or for all.
	Load func() float64
	// MemoryUsedFraction is the fraction of memory reported used by devices
	// without a memory callback (SetMemoryUsed); 0.9 mimics a vLLM server.
	MemoryUsedFraction float64
	// DriverVersion and CUDAVersion fill the inventory; defaults
	// DefaultSimDriverVersion and DefaultSimCUDAVersion.
	DriverVersion, CUDAVersion string
}

// Versions a simulated inventory reports unless SimOptions sets them.
const (
	DefaultSimDriverVersion = "550.90.07"
	DefaultSimCUDAVersion   = "12.4"
)

// SimulatedBackend is a Backend of simulated GPUs (see the formulas above).
// Its methods are safe for concurrent use; callbacks are called without its
// lock held.
type SimulatedBackend struct {
	spec     SimSpec
	inv      Inventory
	fraction float64

	mu   sync.Mutex
	devs []simDevice
}

// simDevice is the state of one simulated GPU.
type simDevice struct {
	load      func() float64
	memUsed   func() uint64
	lost      bool
	last      time.Time // time of the previous sample; zero before the first
	lastPower float64
	energyMJ  float64
}

var _ Backend = (*SimulatedBackend)(nil)

// NewSimulated returns spec.Count simulated GPUs of spec.Model with indexes
// 0…Count−1, names and memory totals from the model table, and UUIDs
// derived from opts.Seed, the model and the index.
func NewSimulated(spec SimSpec, opts SimOptions) *SimulatedBackend {
	b := &SimulatedBackend{
		spec:     spec,
		fraction: clamp01(opts.MemoryUsedFraction),
		devs:     make([]simDevice, spec.Count),
		inv: Inventory{
			DriverVersion: opts.DriverVersion,
			CUDAVersion:   opts.CUDAVersion,
			Source:        SourceSimulated,
		},
	}
	if b.inv.DriverVersion == "" {
		b.inv.DriverVersion = DefaultSimDriverVersion
	}
	if b.inv.CUDAVersion == "" {
		b.inv.CUDAVersion = DefaultSimCUDAVersion
	}
	for i := range spec.Count {
		b.devs[i].load = opts.Load
		b.inv.Devices = append(b.inv.Devices, Device{
			Index:            i,
			UUID:             simUUID(opts.Seed, spec.Model.Key, i),
			Name:             spec.Model.Name,
			MemoryTotalBytes: spec.Model.MemoryBytes,
		})
	}
	return b
}

// simUUID derives an NVML-style UUID ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-
// xxxxxxxxxxxx") from the seed, model key and index.
func simUUID(seed, key string, index int) string {
	sum := sha256.Sum256([]byte("perfleet-simulated-gpu\x00" + seed + "\x00" + key + "\x00" + strconv.Itoa(index)))
	h := hex.EncodeToString(sum[:16])
	return fmt.Sprintf("GPU-%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// Spec returns the spec the backend simulates.
func (b *SimulatedBackend) Spec() SimSpec { return b.spec }

// Inventory returns the simulated inventory. Devices marked lost with
// MarkLost are not shown lost here; the Sampler's inventory shows them.
func (b *SimulatedBackend) Inventory() Inventory { return b.inv.clone() }

// forDevices runs fn on device index, or on all for AllDevices, under the lock.
func (b *SimulatedBackend) forDevices(index int, fn func(*simDevice)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if index == AllDevices {
		for i := range b.devs {
			fn(&b.devs[i])
		}
		return nil
	}
	if index < 0 || index >= len(b.devs) {
		return fmt.Errorf("%w: %d", ErrNoDevice, index)
	}
	fn(&b.devs[index])
	return nil
}

// SetLoad makes load (0..1, clamped) drive device index, or every device
// for AllDevices; nil means idle. It fails with ErrNoDevice for an index
// out of range.
func (b *SimulatedBackend) SetLoad(index int, load func() float64) error {
	return b.forDevices(index, func(d *simDevice) { d.load = load })
}

// SetMemoryUsed makes used report the memory used of device index, or of
// every device for AllDevices; nil reverts to MemoryUsedFraction.
func (b *SimulatedBackend) SetMemoryUsed(index int, used func() uint64) error {
	return b.forDevices(index, func(d *simDevice) { d.memUsed = used })
}

// MarkLost makes later samples of device index fail with ErrDeviceLost, as a
// GPU falling off the bus would.
func (b *SimulatedBackend) MarkLost(index int) error {
	return b.forDevices(index, func(d *simDevice) { d.lost = true })
}

// Sample computes device index's reading at now from its load callback.
func (b *SimulatedBackend) Sample(index int, now time.Time) (Sample, error) {
	var d simDevice
	if err := b.forDevices(index, func(p *simDevice) { d = *p }); err != nil {
		return Sample{}, err
	}
	if d.lost {
		return Sample{Time: now, Index: index, Lost: true},
			fmt.Errorf("%w: simulated GPU %d", ErrDeviceLost, index)
	}
	m := b.spec.Model
	load := 0.0
	if d.load != nil {
		load = clamp01(d.load())
	}
	used := uint64(b.fraction * float64(m.MemoryBytes))
	if d.memUsed != nil {
		used = min(d.memUsed(), m.MemoryBytes)
	}
	power := m.IdleWatts + (m.TDPWatts-m.IdleWatts)*math.Pow(load, SimPowerExponent)
	s := Sample{
		Time:         now,
		Index:        index,
		Fields:       FieldGPUUtil | FieldMemUtil | FieldMemUsed | FieldPower | FieldSMClock | FieldTemperature | FieldThrottle | FieldEnergy,
		GPUUtil:      100 * load,
		MemUtil:      100 * load * SimMemUtilRatio,
		MemUsedBytes: used,
		PowerWatts:   power,
		SMClockMHz:   m.MaxSMClockMHz,
		TemperatureC: uint32(math.Round(SimAmbientC + SimTempRiseC*power/m.TDPWatts)),
	}
	switch {
	case load < SimIdleLoad:
		s.SMClockMHz = m.IdleSMClockMHz
		s.ThrottleReasons = ThrottleReasonNames(ThrottleGPUIdle)
	case load >= SimPowerCapLoad:
		s.ThrottleReasons = ThrottleReasonNames(ThrottleSWPowerCap)
	}
	b.mu.Lock()
	p := &b.devs[index]
	if !p.last.IsZero() && now.After(p.last) {
		p.energyMJ += (p.lastPower + power) / 2 * now.Sub(p.last).Seconds() * 1000
	}
	if p.last.IsZero() || now.After(p.last) {
		p.last, p.lastPower = now, power
	}
	s.EnergyMillijoules = uint64(p.energyMJ)
	b.mu.Unlock()
	return s, nil
}

// Close does nothing.
func (b *SimulatedBackend) Close() error { return nil }

// clamp01 clamps v to [0, 1], mapping NaN to 0.
func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, 1)
}
