//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// eventReasonsSymbol is the NVML function that replaced
// nvmlDeviceGetCurrentClocksThrottleReasons (driver r535 and later).
const eventReasonsSymbol = "nvmlDeviceGetCurrentClocksEventReasons"

// Open returns the NVML backend when libnvidia-ml.so.1 loads and
// initialises, else a NoneBackend whose inventory says why, after logging it
// at Info level. It never fails: a machine without NVML has no GPUs.
func Open(logger *slog.Logger) Backend {
	return openNVML(nvml.New(), logger)
}

// openNVML is Open on a given library, for tests.
func openNVML(lib nvml.Interface, logger *slog.Logger) Backend {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b, err := NewNVML(lib, logger)
	if err != nil {
		logger.Info("no GPU: NVML not available", "err", err)
		return NewNone(err.Error())
	}
	inv := b.Inventory()
	logger.Info("GPU inventory from NVML", "gpus", len(inv.Devices), "usable", inv.Usable(),
		"summary", inv.Summary().String(), "driver", inv.DriverVersion, "cuda", inv.CUDAVersion)
	return b
}

// NVMLBackend reads GPUs through an nvml.Interface: nvml.New() in
// production, go-nvml's mock.Interface in tests.
type NVMLBackend struct {
	lib          nvml.Interface
	log          *slog.Logger
	inv          Inventory
	handles      map[int]nvml.Device // usable devices by Index
	eventReasons bool                // use GetCurrentClocksEventReasons
	closeOnce    sync.Once
	closeErr     error
}

var _ Backend = (*NVMLBackend)(nil)

// NewNVML initialises lib and reads the inventory: driver and CUDA versions,
// then index, UUID, name, memory and MIG mode of each device. It fails,
// wrapping ErrNVMLUnavailable, when Init or DeviceGetCount fails. A device
// whose handle cannot be obtained, or that NVML reports lost, is listed with
// Lost set; other per-device read errors leave the field empty and are
// logged. A nil logger discards log lines.
func NewNVML(lib nvml.Interface, logger *slog.Logger) (*NVMLBackend, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: init: %s", ErrNVMLUnavailable, ret.Error())
	}
	b := &NVMLBackend{lib: lib, log: logger, handles: map[int]nvml.Device{},
		inv: Inventory{Source: SourceNVML}}
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		lib.Shutdown()
		return nil, fmt.Errorf("%w: device count: %s", ErrNVMLUnavailable, ret.Error())
	}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		b.inv.DriverVersion = v
	} else {
		logger.Warn("NVML: no driver version", "err", ret.Error())
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		b.inv.CUDAVersion = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	} else {
		logger.Warn("NVML: no CUDA driver version", "err", ret.Error())
	}
	for i := 0; i < count; i++ {
		b.inv.Devices = append(b.inv.Devices, b.describe(i))
	}
	b.eventReasons = hasSymbol(lib, eventReasonsSymbol)
	return b, nil
}

// hasSymbol reports whether the loaded NVML library exports name. Calling a
// function the driver lacks would abort the process, so newer entry points
// are probed first. A mock without Extensions configured counts as lacking it.
func hasSymbol(lib nvml.Interface, name string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ext := lib.Extensions()
	return ext != nil && ext.LookupSymbol(name) == nil
}

// describe reads the inventory entry of device i.
func (b *NVMLBackend) describe(i int) Device {
	d := Device{Index: i}
	h, ret := b.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		d.Lost, d.LostReason = true, "handle: "+ret.Error()
		b.log.Warn("NVML: GPU unusable", "index", i, "err", d.LostReason)
		return d
	}
	// field classifies ret; it reports whether the value may be used.
	field := func(what string, ret nvml.Return) bool {
		switch ret {
		case nvml.SUCCESS:
			return true
		case nvml.ERROR_NOT_SUPPORTED:
		case nvml.ERROR_GPU_IS_LOST:
			d.Lost, d.LostReason = true, what+": "+ret.Error()
			b.log.Warn("NVML: GPU lost", "index", i, "err", d.LostReason)
		default:
			b.log.Warn("NVML: cannot read GPU "+what, "index", i, "err", ret.Error())
		}
		return false
	}
	steps := []func(){
		func() {
			if v, ret := h.GetUUID(); field("UUID", ret) {
				d.UUID = v
			}
		},
		func() {
			if v, ret := h.GetName(); field("name", ret) {
				d.Name = v
			}
		},
		func() {
			if v, ret := h.GetMemoryInfo(); field("memory", ret) {
				d.MemoryTotalBytes = v.Total
			}
		},
		func() {
			if cur, _, ret := h.GetMigMode(); field("MIG mode", ret) {
				d.MIGEnabled = cur == nvml.DEVICE_MIG_ENABLE
			}
		},
	}
	for _, step := range steps {
		if step(); d.Lost {
			return d
		}
	}
	b.handles[i] = h
	return d
}

// Inventory returns the inventory read by NewNVML.
func (b *NVMLBackend) Inventory() Inventory { return b.inv.clone() }

// Sample reads utilisation, memory used, power, SM clock, temperature,
// throttle reasons and the energy counter of device index. Fields the device
// does not support (ERROR_NOT_SUPPORTED) are left out silently; other read
// errors leave the field out and are returned wrapping ErrPartialSample. The
// first ERROR_GPU_IS_LOST stops the reading with an error wrapping
// ErrDeviceLost.
func (b *NVMLBackend) Sample(index int, now time.Time) (Sample, error) {
	h, ok := b.handles[index]
	if !ok {
		return Sample{}, fmt.Errorf("%w: %d", ErrNoDevice, index)
	}
	s := Sample{Time: now, Index: index}
	var errs []error
	var lost error
	// read classifies ret; it reports whether the value may be used.
	read := func(what string, ret nvml.Return) bool {
		switch ret {
		case nvml.SUCCESS:
			return true
		case nvml.ERROR_NOT_SUPPORTED:
		case nvml.ERROR_GPU_IS_LOST:
			lost = fmt.Errorf("%w: GPU %d: %s: %s", ErrDeviceLost, index, what, ret.Error())
		default:
			errs = append(errs, fmt.Errorf("%s: %s", what, ret.Error()))
		}
		return false
	}
	steps := []func(){
		func() {
			if u, ret := h.GetUtilizationRates(); read("utilization", ret) {
				s.Fields |= FieldGPUUtil | FieldMemUtil
				s.GPUUtil, s.MemUtil = float64(u.Gpu), float64(u.Memory)
			}
		},
		func() {
			if m, ret := h.GetMemoryInfo(); read("memory", ret) {
				s.Fields |= FieldMemUsed
				s.MemUsedBytes = m.Used
			}
		},
		func() {
			if mw, ret := h.GetPowerUsage(); read("power", ret) {
				s.Fields |= FieldPower
				s.PowerWatts = float64(mw) / 1000
			}
		},
		func() {
			if mhz, ret := h.GetClockInfo(nvml.CLOCK_SM); read("SM clock", ret) {
				s.Fields |= FieldSMClock
				s.SMClockMHz = mhz
			}
		},
		func() {
			if c, ret := h.GetTemperature(nvml.TEMPERATURE_GPU); read("temperature", ret) {
				s.Fields |= FieldTemperature
				s.TemperatureC = c
			}
		},
		func() {
			var mask uint64
			var ret nvml.Return
			if b.eventReasons {
				mask, ret = h.GetCurrentClocksEventReasons()
			} else {
				mask, ret = h.GetCurrentClocksThrottleReasons()
			}
			if read("throttle reasons", ret) {
				s.Fields |= FieldThrottle
				s.ThrottleReasons = ThrottleReasonNames(mask)
			}
		},
		func() {
			if mj, ret := h.GetTotalEnergyConsumption(); read("energy", ret) {
				s.Fields |= FieldEnergy
				s.EnergyMillijoules = mj
			}
		},
	}
	for _, step := range steps {
		if step(); lost != nil {
			return Sample{Time: now, Index: index, Lost: true}, lost
		}
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("%w: GPU %d: %w", ErrPartialSample, index, errors.Join(errs...))
	}
	return s, nil
}

// Close shuts NVML down; later calls return the first call's result.
func (b *NVMLBackend) Close() error {
	b.closeOnce.Do(func() {
		if ret := b.lib.Shutdown(); ret != nvml.SUCCESS {
			b.closeErr = fmt.Errorf("gpu: NVML shutdown: %s", ret.Error())
		}
	})
	return b.closeErr
}
