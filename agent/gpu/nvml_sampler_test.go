//go:build cgo

package gpu

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func TestNVMLFailingDevice(t *testing.T) {
	d0, d1 := newMockDevice(0), newMockDevice(1)
	d1.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_UNKNOWN }
	d1.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_UNKNOWN }
	d1.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	d1.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	d1.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	d1.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	d1.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	// Inventory reads of device 1 fail too, except the handle and UUID.
	d1.GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
	logger, logs := newTestLogger()
	b, err := NewNVML(newMockLib(d0, d1), logger)
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Inventory().Devices[1]; d.Lost || d.Name != "" || d.UUID == "" || d.MemoryTotalBytes != 0 {
		t.Errorf("inventory of the failing device = %+v", d)
	}
	if !strings.Contains(logs.String(), "cannot read GPU name") {
		t.Errorf("inventory read error not logged: %q", logs)
	}
	s, err := b.Sample(1, t0)
	if !errors.Is(err, ErrPartialSample) || errors.Is(err, ErrDeviceLost) || s.Fields != 0 ||
		!strings.Contains(err.Error(), "power: ERROR_UNKNOWN") {
		t.Errorf("failing device sample = %+v, %v", s, err)
	}

	clk := newFakeClock()
	smp := mustNew(t, b, 0, logger, clk)
	for range 4 {
		smp.Tick()
		clk.Advance(time.Second)
	}
	var n0, n1 int
	for _, s := range smp.Samples(time.Time{}) {
		if s.Index == 0 {
			n0++
		} else {
			n1++
		}
	}
	if n0 != 4 || n1 != 0 {
		t.Errorf("samples: device 0 %d, device 1 %d; want 4 and 0", n0, n1)
	}
	if c := logs.Count("gpu sample failed"); c != 1 {
		t.Errorf("failure logged %d times, want 1", c)
	}
	if len(d1.GetUtilizationRatesCalls()) != 5 { // 1 direct + 4 ticks: still tried, it is not lost
		t.Errorf("failing device read %d times", len(d1.GetUtilizationRatesCalls()))
	}
}

func TestNVMLDeviceLostAtInventory(t *testing.T) {
	d0, d1, d2 := newMockDevice(0), newMockDevice(1), newMockDevice(2)
	d2.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
	lib := newMockLib(d0, d1, d2)
	lib.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		switch i {
		case 0:
			return d0, nvml.SUCCESS
		case 1:
			return nil, nvml.ERROR_NO_PERMISSION
		}
		return d2, nvml.SUCCESS
	}
	b, err := NewNVML(lib, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := b.Inventory()
	if inv.Usable() != 1 || !inv.Devices[1].Lost || inv.Devices[1].LostReason != "handle: ERROR_NO_PERMISSION" ||
		!inv.Devices[2].Lost || inv.Devices[2].LostReason != "UUID: ERROR_GPU_IS_LOST" {
		t.Fatalf("inventory = %+v", inv.Devices)
	}
	if len(d2.GetNameCalls()) != 0 {
		t.Error("lost device read further after the loss")
	}
	clk := newFakeClock()
	s := mustNew(t, b, 0, nil, clk)
	s.Tick()
	s.Tick()
	if got := s.Latest(); len(got) != 1 || got[0].Index != 0 {
		t.Errorf("Latest = %+v, want device 0 only", got)
	}
	if len(d2.GetUtilizationRatesCalls()) != 0 || len(d1.GetUtilizationRatesCalls()) != 0 {
		t.Error("unusable devices sampled")
	}
	if _, err := b.Sample(1, t0); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Sample of a device without handle: %v", err)
	}
}

func TestNVMLDeviceLostMidRun(t *testing.T) {
	d0, d1 := newMockDevice(0), newMockDevice(1)
	var calls atomic.Int32
	d1.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		if calls.Add(1) > 2 {
			return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
		}
		return nvml.Utilization{Gpu: 50}, nvml.SUCCESS
	}
	logger, logs := newTestLogger()
	b, err := NewNVML(newMockLib(d0, d1), logger)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	s := mustNew(t, b, 0, logger, clk)
	for range 6 {
		s.Tick()
		clk.Advance(time.Second)
	}
	inv := s.Inventory()
	if d := inv.Devices[1]; !d.Lost || !strings.Contains(d.LostReason, "ERROR_GPU_IS_LOST") || inv.Devices[0].Lost {
		t.Errorf("inventory = %+v", inv.Devices)
	}
	if n := len(d1.GetUtilizationRatesCalls()); n != 3 {
		t.Errorf("lost device's utilisation read %d times, want 3 (none after the loss)", n)
	}
	if n := len(d1.GetPowerUsageCalls()); n != 2 {
		t.Errorf("lost device's power read %d times, want 2 (reading stops at the loss)", n)
	}
	if n := len(d0.GetUtilizationRatesCalls()); n != 6 {
		t.Errorf("healthy device read %d times, want 6", n)
	}
	var normal, lost int
	for _, smp := range s.Samples(time.Time{}) {
		if smp.Index != 1 {
			continue
		}
		if smp.Lost {
			lost++
		} else {
			normal++
		}
	}
	if normal != 2 || lost != 1 {
		t.Errorf("device 1 samples: %d normal, %d lost; want 2 and 1", normal, lost)
	}
	if latest := s.Latest(); len(latest) != 2 || !latest[1].Lost || latest[0].Lost {
		t.Errorf("Latest = %+v", latest)
	}
	if c := logs.Count("gpu lost"); c != 1 {
		t.Errorf("loss logged %d times, want 1:\n%s", c, logs)
	}
	if w := s.Window(t0, t0.Add(time.Minute)); len(w) != 2 || !w[1].Lost || w[0].Lost || w[0].Samples != 6 {
		t.Errorf("Window = %+v", w)
	}
}
