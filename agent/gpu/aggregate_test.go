package gpu

import (
	"slices"
	"testing"
	"time"
)

// at returns t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// energySample is a sample of device 0 with power and, if mj ≥ 0, the counter.
func energySample(sec, watts float64, mj int64) Sample {
	s := Sample{Time: at(sec), Fields: FieldPower, PowerWatts: watts}
	if mj >= 0 {
		s.Fields |= FieldEnergy
		s.EnergyMillijoules = uint64(mj)
	}
	return s
}

func TestAggregateEnergy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		samples  []Sample
		from, to float64
		joules   float64
		source   string
		covered  float64
	}{
		{
			name:    "counter over whole segments",
			samples: []Sample{energySample(0, 100, 0), energySample(1, 100, 100_000), energySample(2, 100, 300_000)},
			from:    0, to: 2, joules: 300, source: EnergyCounter, covered: 2,
		},
		{
			name:    "counter share of partial segments",
			samples: []Sample{energySample(0, 100, 0), energySample(1, 100, 100_000), energySample(2, 100, 300_000)},
			from:    0.5, to: 1.5, joules: 50 + 100, source: EnergyCounter, covered: 1,
		},
		{
			name:    "power integrated by trapezoids",
			samples: []Sample{energySample(0, 100, -1), energySample(1, 200, -1)},
			from:    0, to: 1, joules: 150, source: EnergyIntegrated, covered: 1,
		},
		{
			name: "power interpolated inside a segment",
			// power 100→200 over [0,2]; window [0.5,1.5]: 125→175 → 150 J
			samples: []Sample{energySample(0, 100, -1), energySample(2, 200, -1)},
			from:    0.5, to: 1.5, joules: 150, source: EnergyIntegrated, covered: 1,
		},
		{
			name:    "counter where both ends have it, else power",
			samples: []Sample{energySample(0, 100, 0), energySample(1, 100, 120_000), energySample(2, 300, -1)},
			from:    0, to: 2, joules: 120 + 200, source: EnergyMixed, covered: 2,
		},
		{
			name:    "counter going backwards falls back to power",
			samples: []Sample{energySample(0, 100, 500_000), energySample(1, 100, 1_000)},
			from:    0, to: 1, joules: 100, source: EnergyIntegrated, covered: 1,
		},
		{
			name:    "window beyond the samples covers only the samples' span",
			samples: []Sample{energySample(1, 100, 0), energySample(2, 100, 100_000)},
			from:    0, to: 10, joules: 100, source: EnergyCounter, covered: 1,
		},
		{
			name:    "a single sample gives no energy",
			samples: []Sample{energySample(1, 100, 0)},
			from:    0, to: 2, joules: 0, source: "", covered: 0,
		},
		{
			name:    "no power and no counter",
			samples: []Sample{{Time: at(0), Fields: FieldGPUUtil}, {Time: at(1), Fields: FieldGPUUtil}},
			from:    0, to: 1, joules: 0, source: "", covered: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Aggregate(tc.samples, at(tc.from), at(tc.to))
			if len(got) != 1 {
				t.Fatalf("Aggregate = %+v, want one device", got)
			}
			w := got[0]
			if !near(w.EnergyJoules, tc.joules, 1e-6) || w.EnergySource != tc.source || !near(w.CoveredSeconds, tc.covered, 1e-9) {
				t.Errorf("energy = %v J from %q over %v s, want %v J from %q over %v s",
					w.EnergyJoules, w.EnergySource, w.CoveredSeconds, tc.joules, tc.source, tc.covered)
			}
			if has := w.Fields&FieldEnergy != 0; has != (tc.source != "") {
				t.Errorf("FieldEnergy set = %v with source %q", has, tc.source)
			}
		})
	}
}

func TestAggregateStats(t *testing.T) {
	samples := []Sample{
		// device 1 listed first and out of order: output is sorted.
		{Time: at(1), Index: 1, Fields: FieldGPUUtil, GPUUtil: 40},
		{Time: at(0.5), Index: 1, Fields: FieldGPUUtil, GPUUtil: 20},
		// device 0: one sample before the window, three inside, one after.
		{Time: at(-1), Index: 0, Fields: FieldGPUUtil | FieldPower, GPUUtil: 99, PowerWatts: 999},
		{Time: at(0), Index: 0, Fields: FieldGPUUtil | FieldMemUtil | FieldMemUsed | FieldPower | FieldThrottle,
			GPUUtil: 10, MemUtil: 5, MemUsedBytes: 100, PowerWatts: 100, ThrottleReasons: []string{"sw_power_cap"}},
		{Time: at(1), Index: 0, Fields: FieldGPUUtil | FieldMemUsed | FieldPower | FieldThrottle,
			GPUUtil: 30, MemUsedBytes: 300, PowerWatts: 300, ThrottleReasons: []string{"hw_slowdown", "idle"}},
		{Time: at(1.5), Index: 0, Fields: FieldThrottle},
		{Time: at(2), Index: 0, Fields: FieldGPUUtil, GPUUtil: 100},
	}
	got := Aggregate(samples, at(0), at(2))
	if len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 {
		t.Fatalf("Aggregate = %+v, want devices 0 and 1 in order", got)
	}
	w := got[0]
	if w.Samples != 3 || w.GPUUtilMean != 20 || w.GPUUtilMax != 30 || w.MemUtilMean != 5 || w.MemUtilMax != 5 ||
		w.MemUsedMaxBytes != 300 || w.PowerMeanWatts != 200 || w.PowerMaxWatts != 300 {
		t.Errorf("device 0 stats = %+v", w)
	}
	if want := []string{"idle", "sw_power_cap", "hw_slowdown"}; !slices.Equal(w.ThrottleReasons, want) {
		t.Errorf("throttle union = %v, want %v (bit order)", w.ThrottleReasons, want)
	}
	wantFields := FieldGPUUtil | FieldMemUtil | FieldMemUsed | FieldPower | FieldThrottle | FieldEnergy
	if w.Fields != wantFields {
		t.Errorf("fields = %v, want %v", w.Fields, wantFields)
	}
	if d1 := got[1]; d1.Samples != 2 || d1.GPUUtilMean != 30 || d1.Fields != FieldGPUUtil || d1.EnergySource != "" {
		t.Errorf("device 1 stats = %+v", d1)
	}
}

func TestAggregateLost(t *testing.T) {
	samples := []Sample{
		{Time: at(0), Index: 0, Fields: FieldPower, PowerWatts: 100},
		{Time: at(1), Index: 0, Lost: true},
		{Time: at(0), Index: 1, Fields: FieldPower, PowerWatts: 100},
		{Time: at(5), Index: 1, Lost: true},
		{Time: at(6), Index: 2, Lost: true},
	}
	got := Aggregate(samples, at(0), at(2))
	if len(got) != 2 {
		t.Fatalf("Aggregate = %+v, want devices 0 and 1 (device 2 was lost after the window)", got)
	}
	if !got[0].Lost || got[0].Samples != 1 || got[0].EnergySource != "" {
		t.Errorf("device 0 = %+v, want lost, 1 sample, no energy across the lost sample", got[0])
	}
	if got[1].Lost {
		t.Errorf("device 1 = %+v, lost only after the window", got[1])
	}
}

func TestThrottleReasonNames(t *testing.T) {
	for _, tc := range []struct {
		mask uint64
		want []string
	}{
		{0, nil},
		{ThrottleGPUIdle, []string{"idle"}},
		{ThrottleSWPowerCap | ThrottleHWSlowdown, []string{"sw_power_cap", "hw_slowdown"}},
		{0x1ff, []string{"idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
			"sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake", "display_clock_setting"}},
		{ThrottleBoardLimit | ThrottleReliability | 1<<12, []string{"board_limit", "reliability", "bit_12"}},
	} {
		if got := ThrottleReasonNames(tc.mask); !slices.Equal(got, tc.want) {
			t.Errorf("ThrottleReasonNames(%#x) = %v, want %v", tc.mask, got, tc.want)
		}
	}
	if throttleRank("bit_12") <= throttleRank("reliability") || throttleRank("zzz") <= throttleRank("bit_63") {
		t.Error("throttleRank does not order unknown names last")
	}
	if got := (FieldGPUUtil | FieldEnergy).String(); got != "gpu_util|energy" {
		t.Errorf("Field.String = %q", got)
	}
}
