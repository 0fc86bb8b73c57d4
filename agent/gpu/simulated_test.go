package gpu

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSimulated(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		count int
		key   string
	}{
		{"8xH100-80GB", 8, "H100-80GB"},
		{"1xL4", 1, "L4"},
		{"2xA100-80GB", 2, "A100-80GB"},
		{"4xL40S", 4, "L40S"},
		{"A10G", 1, "A10G"},
		{"T4", 1, "T4"},
		{" 2 X h100 ", 2, "H100-80GB"},
		{"8xH200", 8, "H200-141GB"},
		{"3xa100-40gb", 3, "A100-40GB"},
		{"64xT4", 64, "T4"},
	} {
		got, err := ParseSimulated(tc.spec)
		if err != nil || got.Count != tc.count || got.Model.Key != tc.key {
			t.Errorf("ParseSimulated(%q) = %v, %v; want %dx%s", tc.spec, got, err, tc.count, tc.key)
		}
	}
}

func TestParseSimulatedErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"8xH900", `unknown GPU model "H900"; known: A100-40GB, A100-80GB, A10G, H100-80GB, H200-141GB, L4, L40S, T4`},
		{"abc", `unknown GPU model "abc"`},
		{"0xH100", `GPU count "0" must be a whole number from 1 to 64`},
		{"65xH100", `GPU count "65"`},
		{"1.5xH100", `GPU count "1.5"`},
		{"8H100", `missing "x" between count and model`},
		{"8x", `missing GPU model after the count`},
		{"  ", `empty`},
	} {
		_, err := ParseSimulated(tc.spec)
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSimulated(%q) error = %v, want ErrSpec naming %s", tc.spec, err, tc.want)
		}
	}
}

func TestModelTable(t *testing.T) {
	for _, key := range []string{"H100-80GB", "H200-141GB", "A100-80GB", "A100-40GB", "L4", "L40S", "A10G", "T4"} {
		m, ok := LookupModel(key)
		if !ok {
			t.Errorf("model %s missing", key)
			continue
		}
		if m.Name == "" || m.MemoryBytes < 15<<30 || m.IdleWatts <= 0 || m.IdleWatts >= m.TDPWatts ||
			m.IdleSMClockMHz == 0 || m.IdleSMClockMHz >= m.MaxSMClockMHz {
			t.Errorf("implausible model %+v", m)
		}
		if byName, ok := modelByName(m.Name); !ok || byName.Key != key {
			t.Errorf("modelByName(%q) = %v, %v", m.Name, byName.Key, ok)
		}
	}
	if m, _ := LookupModel("H100-80GB"); m.Name != "NVIDIA H100 80GB HBM3" || m.TDPWatts != 700 {
		t.Errorf("H100 = %+v", m)
	}
	if !slices.IsSorted(ModelKeys()) {
		t.Errorf("ModelKeys not sorted: %v", ModelKeys())
	}
	ms := Models()
	ms[0].Aliases[0] = "changed"
	if models[0].Aliases[0] == "changed" {
		t.Error("Models shares the table")
	}
}

func TestSimulatedInventory(t *testing.T) {
	spec, _ := ParseSimulated("8xH100-80GB")
	a := NewSimulated(spec, SimOptions{Seed: "host-a"}).Inventory()
	again := NewSimulated(spec, SimOptions{Seed: "host-a"}).Inventory()
	b := NewSimulated(spec, SimOptions{Seed: "host-b"}).Inventory()
	uuidRE := regexp.MustCompile(`^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i, d := range a.Devices {
		if d.Index != i || d.Name != "NVIDIA H100 80GB HBM3" || d.MemoryTotalBytes != 81559<<20 || d.Lost || d.MIGEnabled {
			t.Errorf("device %d = %+v", i, d)
		}
		if !uuidRE.MatchString(d.UUID) || seen[d.UUID] {
			t.Errorf("device %d UUID %q malformed or repeated", i, d.UUID)
		}
		seen[d.UUID] = true
		if again.Devices[i].UUID != d.UUID || b.Devices[i].UUID == d.UUID {
			t.Errorf("device %d UUIDs not derived from the seed alone", i)
		}
	}
	if a.Source != SourceSimulated || a.DriverVersion != DefaultSimDriverVersion || a.CUDAVersion != DefaultSimCUDAVersion {
		t.Errorf("inventory = %+v", a)
	}
	sum := a.Summary()
	if sum != spec.Summary() || sum.String() != "8xH100-80GB/81559MiB" {
		t.Errorf("Summary = %+v (%s), spec summary %+v", sum, sum, spec.Summary())
	}
	if spec.String() != "8xH100-80GB" {
		t.Errorf("spec String = %q", spec)
	}
}

func TestInventorySummary(t *testing.T) {
	inv := Inventory{Source: SourceNVML, Devices: []Device{
		{Name: "NVIDIA L4", MemoryTotalBytes: 23034 << 20},
		{Name: "NVIDIA GeForce RTX 4090", MemoryTotalBytes: 24564 << 20},
		{Name: "NVIDIA L4", Lost: true},
	}}
	if got := inv.Summary(); got.Count != 2 || got.Model != "mixed" || got.MemoryMiB != 23034 {
		t.Errorf("mixed summary = %+v", got)
	}
	inv.Devices = inv.Devices[1:2]
	if got := inv.Summary().String(); got != "1xNVIDIA GeForce RTX 4090/24564MiB" {
		t.Errorf("unknown-model summary = %q", got)
	}
	if got := (Inventory{Source: SourceNone}).Summary(); got.String() != "none" || got.Count != 0 {
		t.Errorf("empty summary = %+v", got)
	}
}

func TestSimulatedSampleFormulas(t *testing.T) {
	spec, _ := ParseSimulated("2xH100")
	m := spec.Model
	load := 0.0
	sim := NewSimulated(spec, SimOptions{Load: func() float64 { return load }, MemoryUsedFraction: 0.9})
	for _, tc := range []struct {
		load     float64
		power    float64
		clock    uint32
		throttle []string
	}{
		{0, 70, 345, []string{"idle"}},
		{1, 700, 1980, []string{"sw_power_cap"}},
		{0.5, 70 + 630*math.Pow(0.5, 0.8), 1980, nil},
		{2, 700, 1980, []string{"sw_power_cap"}},                      // clamped
		{math.NaN(), 70, 345, []string{"idle"}},                       // NaN is idle
		{-1, 70, 345, []string{"idle"}},                               // clamped
		{0.005, 70 + 630*math.Pow(0.005, 0.8), 345, []string{"idle"}}, // below SimIdleLoad
	} {
		load = tc.load
		s, err := sim.Sample(0, t0)
		if err != nil {
			t.Fatal(err)
		}
		wantTemp := uint32(math.Round(SimAmbientC + SimTempRiseC*tc.power/m.TDPWatts))
		l := clamp01(tc.load)
		if !near(s.PowerWatts, tc.power, 1e-9) || s.SMClockMHz != tc.clock || s.TemperatureC != wantTemp ||
			!slices.Equal(s.ThrottleReasons, tc.throttle) || !near(s.GPUUtil, 100*l, 1e-9) ||
			!near(s.MemUtil, 100*l*SimMemUtilRatio, 1e-9) || s.MemUsedBytes != uint64(0.9*float64(m.MemoryBytes)) {
			t.Errorf("load %v: sample %+v; want power %v clock %v temp %v throttle %v", tc.load, s, tc.power, tc.clock, wantTemp, tc.throttle)
		}
		if s.Fields != FieldGPUUtil|FieldMemUtil|FieldMemUsed|FieldPower|FieldSMClock|FieldTemperature|FieldThrottle|FieldEnergy {
			t.Errorf("fields = %v", s.Fields)
		}
	}
}

func TestSimulatedTemperature(t *testing.T) {
	spec, _ := ParseSimulated("L40S")
	load := 0.0
	sim := NewSimulated(spec, SimOptions{Load: func() float64 { return load }})
	idle, _ := sim.Sample(0, t0)
	load = 1
	full, _ := sim.Sample(0, t0.Add(time.Second))
	// 30 + 45 × 35/350 = 34.5 → 35 °C idle; 30 + 45 = 75 °C at TDP.
	if idle.TemperatureC != 35 || full.TemperatureC != 75 || full.SMClockMHz != 2520 || idle.SMClockMHz != 210 {
		t.Errorf("idle %d °C %d MHz, full %d °C %d MHz", idle.TemperatureC, idle.SMClockMHz, full.TemperatureC, full.SMClockMHz)
	}
}

func TestSimulatedPerDeviceCallbacks(t *testing.T) {
	spec, _ := ParseSimulated("2xL4")
	sim := NewSimulated(spec, SimOptions{})
	if err := sim.SetLoad(1, func() float64 { return 1 }); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetMemoryUsed(AllDevices, func() uint64 { return 1 << 62 }); err != nil {
		t.Fatal(err)
	}
	s0, _ := sim.Sample(0, t0)
	s1, _ := sim.Sample(1, t0)
	if s0.PowerWatts != 16 || s1.PowerWatts != 72 {
		t.Errorf("powers = %v, %v; want 16 (idle) and 72 (TDP)", s0.PowerWatts, s1.PowerWatts)
	}
	if s0.MemUsedBytes != spec.Model.MemoryBytes {
		t.Errorf("memory used %d not clamped to the total", s0.MemUsedBytes)
	}
	for _, err := range []error{sim.SetLoad(2, nil), sim.SetMemoryUsed(-2, nil), sim.MarkLost(5)} {
		if !errors.Is(err, ErrNoDevice) {
			t.Errorf("out-of-range index error = %v", err)
		}
	}
	if _, err := sim.Sample(7, t0); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Sample(7) error = %v", err)
	}
	if err := sim.MarkLost(0); err != nil {
		t.Fatal(err)
	}
	if s, err := sim.Sample(0, t0); !errors.Is(err, ErrDeviceLost) || !s.Lost {
		t.Errorf("lost device sample = %+v, %v", s, err)
	}
	if _, err := sim.Sample(1, t0); err != nil {
		t.Errorf("other device after loss: %v", err)
	}
	if sim.Spec().String() != spec.String() || sim.Close() != nil {
		t.Error("Spec or Close")
	}
}

func TestSimulatedEnergyCounter(t *testing.T) {
	spec, _ := ParseSimulated("A10G")
	load := 0.0
	sim := NewSimulated(spec, SimOptions{Load: func() float64 { return load }})
	var got []uint64
	for i, l := range []float64{0, 0, 1, 1} { // 20 W, 20 W, 300 W, 300 W at 1 s steps
		load = l
		s, err := sim.Sample(0, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.EnergyMillijoules)
	}
	// trapezoids: 20 J, (20+300)/2 = 160 J, 300 J
	if want := []uint64{0, 20_000, 180_000, 480_000}; !slices.Equal(got, want) {
		t.Errorf("energy counter = %v, want %v", got, want)
	}
	// A repeated or earlier time adds nothing.
	s, _ := sim.Sample(0, t0.Add(2*time.Second))
	if s.EnergyMillijoules != 480_000 {
		t.Errorf("energy after a clock step back = %d", s.EnergyMillijoules)
	}
}
