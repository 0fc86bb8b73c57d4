//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
)

// newMockDevice returns a healthy mock GPU with every sampled call answered.
func newMockDevice(i int) *mock.Device {
	return &mock.Device{
		GetUUIDFunc: func() (string, nvml.Return) {
			return fmt.Sprintf("GPU-0000000%d-aaaa-bbbb-cccc-dddddddddddd", i), nvml.SUCCESS
		},
		GetNameFunc: func() (string, nvml.Return) { return "NVIDIA H100 80GB HBM3", nvml.SUCCESS },
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: 81559 << 20, Used: 1 << 30, Free: 81559<<20 - 1<<30}, nvml.SUCCESS
		},
		GetMigModeFunc: func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_DISABLE, nvml.SUCCESS },
		GetUtilizationRatesFunc: func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 87, Memory: 42}, nvml.SUCCESS
		},
		GetPowerUsageFunc: func() (uint32, nvml.Return) { return 512_345, nvml.SUCCESS },
		GetClockInfoFunc: func(c nvml.ClockType) (uint32, nvml.Return) {
			if c != nvml.CLOCK_SM {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 1980, nvml.SUCCESS
		},
		GetTemperatureFunc: func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 64, nvml.SUCCESS
		},
		GetCurrentClocksEventReasonsFunc: func() (uint64, nvml.Return) {
			return nvml.ClocksEventReasonSwPowerCap | nvml.ClocksThrottleReasonHwSlowdown, nvml.SUCCESS
		},
		GetTotalEnergyConsumptionFunc: func() (uint64, nvml.Return) { return 123_456_789, nvml.SUCCESS },
	}
}

// newMockLib returns an NVML mock holding devs, with driver r550 / CUDA 12.4
// and the clocks-event entry point present.
func newMockLib(devs ...*mock.Device) *mock.Interface {
	return &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "550.54.15", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 12040, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(devs) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return devs[i], nvml.SUCCESS
		},
		ExtensionsFunc: func() nvml.ExtendedInterface {
			return &mock.ExtendedInterface{LookupSymbolFunc: func(string) error { return nil }}
		},
	}
}

func TestOpenNVMLInitFailure(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED, nvml.ERROR_NO_PERMISSION} {
		logger, logs := newTestLogger()
		lib := newMockLib(newMockDevice(0))
		lib.InitFunc = func() nvml.Return { return ret }
		b := openNVML(lib, logger)
		none, ok := b.(*NoneBackend)
		if !ok {
			t.Fatalf("Init %v: Open returned %T, want *NoneBackend", ret, b)
		}
		inv := none.Inventory()
		if inv.Source != SourceNone || len(inv.Devices) != 0 || !strings.Contains(inv.Reason, ret.Error()) {
			t.Errorf("Init %v: inventory = %+v", ret, inv)
		}
		if !strings.Contains(logs.String(), "no GPU: NVML not available") || !strings.Contains(logs.String(), ret.Error()) {
			t.Errorf("Init %v: log = %q", ret, logs)
		}
		if len(lib.DeviceGetCountCalls()) != 0 {
			t.Errorf("Init %v: device count read after a failed Init", ret)
		}
		if _, err := NewNVML(lib, nil); !errors.Is(err, ErrNVMLUnavailable) {
			t.Errorf("NewNVML error = %v, want ErrNVMLUnavailable", err)
		}
	}
}

func TestNewNVMLDeviceCountFailure(t *testing.T) {
	lib := newMockLib()
	lib.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	if _, err := NewNVML(lib, nil); !errors.Is(err, ErrNVMLUnavailable) || !strings.Contains(err.Error(), "device count") {
		t.Errorf("error = %v", err)
	}
	if n := len(lib.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times after the failure, want 1", n)
	}
}

// TestOpenSystemLibrary opens the real library: on a machine without NVIDIA's
// driver it must report no GPU, not crash.
func TestOpenSystemLibrary(t *testing.T) {
	logger, logs := newTestLogger()
	b := Open(logger)
	defer b.Close()
	inv := b.Inventory()
	switch inv.Source {
	case SourceNone:
		if inv.Reason == "" || !strings.Contains(logs.String(), "no GPU") {
			t.Errorf("none inventory without a reason or log line: %+v, %q", inv, logs)
		}
	case SourceNVML:
		t.Logf("NVML present: %s, driver %s, CUDA %s", inv.Summary(), inv.DriverVersion, inv.CUDAVersion)
		for _, d := range inv.Devices {
			if d.Lost {
				continue
			}
			s, err := b.Sample(d.Index, time.Now())
			t.Logf("GPU %d %s: %+v (err %v)", d.Index, d.Name, s, err)
			if errors.Is(err, ErrDeviceLost) {
				t.Errorf("GPU %d lost", d.Index)
			}
		}
	default:
		t.Errorf("source %q", inv.Source)
	}
}

func TestNVMLInventory(t *testing.T) {
	d0, d1 := newMockDevice(0), newMockDevice(1)
	d1.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }
	d0.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	lib := newMockLib(d0, d1)
	b, err := NewNVML(lib, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := b.Inventory()
	if inv.Source != SourceNVML || inv.DriverVersion != "550.54.15" || inv.CUDAVersion != "12.4" || len(inv.Devices) != 2 {
		t.Fatalf("inventory = %+v", inv)
	}
	for i, d := range inv.Devices {
		if d.Index != i || !strings.HasPrefix(d.UUID, fmt.Sprintf("GPU-0000000%d", i)) || d.Name != "NVIDIA H100 80GB HBM3" ||
			d.MemoryTotalBytes != 81559<<20 || d.MIGEnabled != (i == 1) || d.Lost {
			t.Errorf("device %d = %+v", i, d)
		}
	}
	if got := inv.Summary().String(); got != "2xH100-80GB/81559MiB" {
		t.Errorf("summary = %q", got)
	}
	for v, want := range map[int]string{12020: "12.2", 11080: "11.8", 13000: "13.0"} {
		lib.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { return v, nvml.SUCCESS }
		if b, err := NewNVML(lib, nil); err != nil || b.Inventory().CUDAVersion != want {
			t.Errorf("CUDA %d rendered %q, want %q", v, b.Inventory().CUDAVersion, want)
		}
	}
	if err := b.Close(); err != nil || b.Close() != nil || len(lib.ShutdownCalls()) != 1 {
		t.Errorf("Close: %v, Shutdown calls %d", err, len(lib.ShutdownCalls()))
	}
}

func TestNVMLVersionAndShutdownErrors(t *testing.T) {
	logger, logs := newTestLogger()
	lib := newMockLib()
	lib.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
	lib.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_FUNCTION_NOT_FOUND }
	lib.ShutdownFunc = func() nvml.Return { return nvml.ERROR_UNKNOWN }
	b, err := NewNVML(lib, logger)
	if err != nil {
		t.Fatal(err)
	}
	if inv := b.Inventory(); inv.DriverVersion != "" || inv.CUDAVersion != "" {
		t.Errorf("versions = %q, %q", inv.DriverVersion, inv.CUDAVersion)
	}
	if !strings.Contains(logs.String(), "no driver version") || !strings.Contains(logs.String(), "no CUDA driver version") {
		t.Errorf("log = %q", logs)
	}
	if err := b.Close(); err == nil || !strings.Contains(err.Error(), "ERROR_UNKNOWN") {
		t.Errorf("Close error = %v", err)
	}
}

func TestNVMLInventoryDGXH100(t *testing.T) {
	b, err := NewNVML(dgxh100.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := b.Inventory()
	if len(inv.Devices) != 8 || inv.Usable() != 8 || inv.DriverVersion != "550.54.15" || inv.CUDAVersion != "12.4" {
		t.Fatalf("inventory = %+v", inv)
	}
	if got := inv.Summary(); got.Count != 8 || got.Model != "H100-80GB" {
		t.Errorf("summary = %+v", got)
	}
}

func TestNVMLNoDevices(t *testing.T) {
	b := openNVML(newMockLib(), nil)
	inv := b.Inventory()
	if inv.Source != SourceNVML || len(inv.Devices) != 0 || inv.Summary().String() != "none" {
		t.Fatalf("inventory = %+v", inv)
	}
	s, err := New(b, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Tick()
	if len(s.Latest()) != 0 {
		t.Error("samples without devices")
	}
}

func TestNVMLSample(t *testing.T) {
	for _, event := range []bool{true, false} {
		dev := newMockDevice(0)
		lib := newMockLib(dev)
		if !event { // an older driver: only the throttle-reasons entry point
			lib.ExtensionsFunc = func() nvml.ExtendedInterface {
				return &mock.ExtendedInterface{LookupSymbolFunc: func(string) error { return errors.New("undefined symbol") }}
			}
			dev.GetCurrentClocksEventReasonsFunc = nil // calling it would panic
			dev.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
				return nvml.ClocksThrottleReasonSwPowerCap | nvml.ClocksThrottleReasonHwSlowdown, nvml.SUCCESS
			}
		}
		b, err := NewNVML(lib, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := b.Sample(0, t0)
		if err != nil {
			t.Fatalf("event=%v: %v", event, err)
		}
		want := Sample{Time: t0, Fields: FieldGPUUtil | FieldMemUtil | FieldMemUsed | FieldPower | FieldSMClock |
			FieldTemperature | FieldThrottle | FieldEnergy, GPUUtil: 87, MemUtil: 42, MemUsedBytes: 1 << 30,
			PowerWatts: 512.345, SMClockMHz: 1980, TemperatureC: 64, EnergyMillijoules: 123_456_789}
		throttle := s.ThrottleReasons
		s.ThrottleReasons = nil
		if !reflect.DeepEqual(s, want) || !slices.Equal(throttle, []string{"sw_power_cap", "hw_slowdown"}) {
			t.Errorf("event=%v: sample = %+v %v\nwant %+v", event, s, throttle, want)
		}
	}
	b, _ := NewNVML(newMockLib(newMockDevice(0)), nil)
	if _, err := b.Sample(3, t0); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Sample(3) error = %v", err)
	}
}

func TestHasSymbolUnconfiguredMock(t *testing.T) {
	lib := newMockLib()
	lib.ExtensionsFunc = nil
	if hasSymbol(lib, eventReasonsSymbol) {
		t.Error("symbol found through an unconfigured mock")
	}
}

func TestNVMLNotSupportedFieldsAbsent(t *testing.T) {
	dev := newMockDevice(0)
	dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	b, err := NewNVML(newMockLib(dev), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Sample(0, t0)
	if err != nil {
		t.Fatalf("not-supported fields gave error %v", err)
	}
	if s.Has(FieldEnergy) || s.Has(FieldPower) || s.EnergyMillijoules != 0 || s.PowerWatts != 0 {
		t.Errorf("unsupported fields present: %+v", s)
	}
	if !s.Has(FieldGPUUtil | FieldTemperature | FieldSMClock | FieldThrottle | FieldMemUsed) {
		t.Errorf("supported fields missing: %v", s.Fields)
	}
}
