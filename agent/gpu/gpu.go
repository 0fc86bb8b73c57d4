// Package gpu inventories and samples the GPUs of an agent machine.
//
// Three backends sit behind one small interface, Backend:
//
//   - NVML (cgo builds only): NVIDIA's go-nvml, which dlopens
//     libnvidia-ml.so.1 at run time. A machine without the library or the
//     driver is a machine without GPUs, reported with a log line.
//   - none: no GPUs. Open returns it when NVML cannot be initialised and in
//     static (CGO_ENABLED=0) builds, where NVML is not compiled in at all.
//   - simulated: GPUs described by a spec such as "8xH100-80GB" whose
//     utilisation and power follow a load callback (see ParseSimulated and
//     NewSimulated). `perfleet dev` and tests use it.
//
// A Sampler polls a Backend every interval (1 s by default, 100 ms at the
// least) into a bounded ring buffer that metric windows read through
// Samples, Between, Latest and Window. A device that NVML reports lost is
// marked lost in the inventory and no longer polled; the other devices go on.
//
// Fields a device does not support (NVML's ERROR_NOT_SUPPORTED, e.g. the
// energy counter before Volta) are absent from its samples, not errors: each
// Sample says which fields it holds in Sample.Fields.
package gpu

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	// ErrDeviceLost means the device fell off the bus or otherwise stopped
	// answering (NVML's ERROR_GPU_IS_LOST). It is not sampled again.
	ErrDeviceLost = errors.New("gpu: device lost")
	// ErrNoDevice means a backend was asked for a device index it does not have.
	ErrNoDevice = errors.New("gpu: no such device")
	// ErrPartialSample means some fields of a sample could not be read for a
	// reason other than "not supported"; the sample holds the fields that were.
	ErrPartialSample = errors.New("gpu: sample incomplete")
	// ErrNVMLUnavailable means NVML could not be loaded or initialised.
	ErrNVMLUnavailable = errors.New("gpu: NVML unavailable")
	// ErrInterval means a sampling interval below MinInterval was requested.
	ErrInterval = errors.New("gpu: sampling interval too short")
	// ErrSpec means a simulated GPU spec could not be parsed.
	ErrSpec = errors.New("gpu: invalid simulated GPU spec")
)

// Inventory sources, the value of Inventory.Source.
const (
	SourceNVML      = "nvml"
	SourceSimulated = "simulated"
	SourceNone      = "none"
)

// Backend is what a Sampler polls: NVML, none or simulated. Implementations
// must allow Sample to be called from one goroutine while Inventory is called
// from others.
type Backend interface {
	// Inventory describes the devices as found when the backend was opened.
	Inventory() Inventory
	// Sample reads device index (Device.Index) at time now. A device that is
	// gone returns an error wrapping ErrDeviceLost; a sample missing fields
	// for other reasons comes with an error wrapping ErrPartialSample.
	Sample(index int, now time.Time) (Sample, error)
	// Close releases the backend (NVML: Shutdown).
	Close() error
}

// Device is one GPU of the inventory.
type Device struct {
	// Index is the NVML device index (the CUDA_VISIBLE_DEVICES order on
	// most machines); it need not equal the position in Inventory.Devices.
	Index int
	// UUID is NVML's "GPU-…" identifier.
	UUID string
	// Name is the product name as NVML reports it ("NVIDIA H100 80GB HBM3").
	Name string
	// MemoryTotalBytes is the framebuffer memory visible to applications.
	MemoryTotalBytes uint64
	// MIGEnabled is true when the current MIG mode is enabled.
	MIGEnabled bool
	// Lost is true when the device cannot be used: NVML reported it lost,
	// at start or while sampling, or its handle could not be obtained.
	Lost bool
	// LostReason says why Lost is set ("" otherwise).
	LostReason string
}

// Inventory is the GPU inventory of the machine.
type Inventory struct {
	// Devices lists the GPUs, in NVML index order.
	Devices []Device
	// DriverVersion is the kernel driver version ("550.54.15").
	DriverVersion string
	// CUDAVersion is the highest CUDA version the driver supports ("12.4").
	CUDAVersion string
	// Source is SourceNVML, SourceSimulated or SourceNone.
	Source string
	// Reason says why Source is SourceNone ("" otherwise).
	Reason string
}

// Field names one measurement of a Sample; a Field value is a set of them.
type Field uint16

// The fields of a Sample.
const (
	FieldGPUUtil Field = 1 << iota
	FieldMemUtil
	FieldMemUsed
	FieldPower
	FieldSMClock
	FieldTemperature
	FieldThrottle
	FieldEnergy
)

var fieldNames = []string{"gpu_util", "mem_util", "mem_used", "power", "sm_clock",
	"temperature", "throttle", "energy"}

// String lists the fields of the set, joined with "|".
func (f Field) String() string {
	var names []string
	for i, name := range fieldNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, "|")
}

// Sample is one reading of one device. Only the fields in Fields are
// meaningful; the others are zero.
type Sample struct {
	// Time is when the sampler took the reading.
	Time time.Time
	// Index is the device's Device.Index.
	Index int
	// Fields says which of the following measurements are present.
	Fields Field
	// GPUUtil is the percentage of time a kernel ran (0–100).
	GPUUtil float64
	// MemUtil is the percentage of time device memory was read or written.
	MemUtil float64
	// MemUsedBytes is the allocated device memory.
	MemUsedBytes uint64
	// PowerWatts is the board power draw.
	PowerWatts float64
	// SMClockMHz is the current SM clock.
	SMClockMHz uint32
	// TemperatureC is the GPU core temperature in °C.
	TemperatureC uint32
	// ThrottleReasons are the active clock throttle (NVML "clocks event")
	// reasons, decoded by ThrottleReasonNames; shared, do not modify.
	ThrottleReasons []string
	// EnergyMillijoules is the device's energy counter since driver load.
	EnergyMillijoules uint64
	// Lost marks the reading at which the device was found lost; such a
	// sample holds no measurements.
	Lost bool
}

// Has reports whether every field of f is present in s.
func (s Sample) Has(f Field) bool { return s.Fields&f == f }

// Throttle reason bits, as in NVML's nvmlClocksEventReason* constants.
const (
	ThrottleGPUIdle                   uint64 = 0x1
	ThrottleApplicationsClocksSetting uint64 = 0x2
	ThrottleSWPowerCap                uint64 = 0x4
	ThrottleHWSlowdown                uint64 = 0x8
	ThrottleSyncBoost                 uint64 = 0x10
	ThrottleSWThermalSlowdown         uint64 = 0x20
	ThrottleHWThermalSlowdown         uint64 = 0x40
	ThrottleHWPowerBrakeSlowdown      uint64 = 0x80
	ThrottleDisplayClockSetting       uint64 = 0x100
	ThrottleBoardLimit                uint64 = 0x200
	ThrottleReliability               uint64 = 0x400
)

// throttleNames holds the stable name of each bit, in bit order.
var throttleNames = []struct {
	bit  uint64
	name string
}{
	{ThrottleGPUIdle, "idle"},
	{ThrottleApplicationsClocksSetting, "applications_clocks_setting"},
	{ThrottleSWPowerCap, "sw_power_cap"},
	{ThrottleHWSlowdown, "hw_slowdown"},
	{ThrottleSyncBoost, "sync_boost"},
	{ThrottleSWThermalSlowdown, "sw_thermal_slowdown"},
	{ThrottleHWThermalSlowdown, "hw_thermal_slowdown"},
	{ThrottleHWPowerBrakeSlowdown, "hw_power_brake"},
	{ThrottleDisplayClockSetting, "display_clock_setting"},
	{ThrottleBoardLimit, "board_limit"},
	{ThrottleReliability, "reliability"},
}

// ThrottleReasonNames decodes an NVML throttle (clocks event) bitmask into
// stable names in bit order: "idle", "applications_clocks_setting",
// "sw_power_cap", "hw_slowdown", "sync_boost", "sw_thermal_slowdown",
// "hw_thermal_slowdown", "hw_power_brake", "display_clock_setting",
// "board_limit", "reliability"; bits without a name become "bit_N". A zero
// mask gives nil.
func ThrottleReasonNames(mask uint64) []string {
	if mask == 0 {
		return nil
	}
	var names []string
	known := uint64(0)
	for _, t := range throttleNames {
		known |= t.bit
		if mask&t.bit != 0 {
			names = append(names, t.name)
		}
	}
	for i := 0; i < 64; i++ {
		if bit := uint64(1) << i; mask&bit != 0 && known&bit == 0 {
			names = append(names, "bit_"+strconv.Itoa(i))
		}
	}
	return names
}

// throttleRank orders throttle names as ThrottleReasonNames does.
func throttleRank(name string) int {
	for i, t := range throttleNames {
		if t.name == name {
			return i
		}
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(name, "bit_")); err == nil {
		return len(throttleNames) + n
	}
	return len(throttleNames) + 64
}
