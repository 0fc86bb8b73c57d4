package loadgen

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func gapStats(offs []time.Duration) (mean, variance float64) {
	n := float64(len(offs) - 1)
	for i := 1; i < len(offs); i++ {
		mean += (offs[i] - offs[i-1]).Seconds()
	}
	mean /= n
	for i := 1; i < len(offs); i++ {
		d := (offs[i] - offs[i-1]).Seconds() - mean
		variance += d * d
	}
	return mean, variance / n
}

func TestArrivalMoments(t *testing.T) {
	const n = 200_000
	tests := []struct {
		name       string
		p          Pattern
		rate, k    float64
		wantVarMul float64 // variance × rate²
	}{
		{"constant", Constant, 100, 0, 0},
		{"poisson", Poisson, 100, 0, 1},
		{"gamma k=1", Gamma, 50, 1, 1},
		{"gamma bursty k=0.25", Gamma, 200, 0.25, 4},
		{"gamma smooth k=4", Gamma, 1000, 4, 0.25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArrivals(tc.p, tc.rate, tc.k, 42)
			if err != nil {
				t.Fatal(err)
			}
			offs := Take(a, n)
			if offs[0] != 0 {
				t.Fatalf("first offset %v", offs[0])
			}
			mean, v := gapStats(offs)
			// 4 standard errors of the mean gap (CV = sqrt(variance×rate²)).
			tol := 4*math.Sqrt(tc.wantVarMul)/math.Sqrt(n) + 1e-6
			if rel := math.Abs(mean*tc.rate - 1); rel > tol {
				t.Errorf("mean gap %v, want %v (rel err %.4f)", mean, 1/tc.rate, rel)
			}
			if tc.wantVarMul == 0 {
				if v*tc.rate*tc.rate > 1e-9 {
					t.Errorf("constant gaps vary: %v", v)
				}
				return
			}
			if rel := math.Abs(v*tc.rate*tc.rate/tc.wantVarMul - 1); rel > 0.05 {
				t.Errorf("variance×rate² = %v, want %v", v*tc.rate*tc.rate, tc.wantVarMul)
			}
			// Deterministic for a seed.
			b, _ := NewArrivals(tc.p, tc.rate, tc.k, 42)
			if again := Take(b, 100); again[99] != offs[99] {
				t.Errorf("not deterministic: %v vs %v", again[99], offs[99])
			}
		})
	}
}

func TestConstantNoDrift(t *testing.T) {
	a, _ := NewArrivals(Constant, 3, 0, 0)
	offs := Take(a, 3001)
	if offs[3000] != 1000*time.Second {
		t.Fatalf("offset 3000 = %v, want 1000s", offs[3000])
	}
	if offs[1] != 333333333 {
		t.Fatalf("offset 1 = %v", offs[1])
	}
}

func TestArrivalErrors(t *testing.T) {
	for _, tc := range []struct {
		p    Pattern
		rate float64
		k    float64
	}{{Constant, 0, 0}, {Poisson, -1, 0}, {Gamma, 1, -1}, {"zipf", 1, 0}, {Constant, math.Inf(1), 0}} {
		if _, err := NewArrivals(tc.p, tc.rate, tc.k, 1); !errors.Is(err, ErrSchedule) {
			t.Errorf("%v: err %v", tc, err)
		}
	}
}

func TestPhaseProfile(t *testing.T) {
	tests := []struct {
		name  string
		p     Phase
		at    []time.Duration
		users []int
	}{
		{"no spawn", Phase{InitialUsers: 2, Duration: time.Minute}, []time.Duration{0, 59 * time.Second}, []int{2, 2}},
		{"6 per minute", Phase{InitialUsers: 1, SpawnRate: 6, Duration: 30 * time.Second},
			[]time.Duration{0, 9 * time.Second, 10 * time.Second, 25 * time.Second, 29 * time.Second}, []int{1, 1, 2, 3, 3}},
		{"60 per minute", Phase{InitialUsers: 0, SpawnRate: 60, Duration: 5 * time.Second},
			[]time.Duration{0, 1500 * time.Millisecond, 4 * time.Second}, []int{0, 1, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prof := PhaseProfile(tc.p)
			for i, at := range tc.at {
				if got := UsersAt(prof, at); got != tc.users[i] {
					t.Errorf("users at %v = %d, want %d (profile %v)", at, got, tc.users[i], prof)
				}
			}
		})
	}
	levels := PhaseLevels([]Phase{{InitialUsers: 1, SpawnRate: 1, Duration: 2 * time.Minute}, {InitialUsers: 3, Duration: time.Minute}}, Stage{})
	if len(levels) != 2 || levels[1].Name != "phase_2" || levels[0].Profile.Mode != Users || levels[0].Profile.Duration != 2*time.Minute {
		t.Fatalf("levels %+v", levels)
	}
}

func TestStairsAndSweep(t *testing.T) {
	ls := StairsLevels(Stairs{UsersPerStep: 2, StepDuration: 30 * time.Second, NumberOfSteps: 3}, Stage{Grace: time.Second})
	want := []int{2, 4, 6}
	for i, l := range ls {
		if l.Profile.Concurrency != want[i] || l.Profile.Duration != 30*time.Second || l.Profile.Mode != ClosedLoop || l.Profile.Grace != time.Second {
			t.Errorf("step %d: %+v", i, l.Profile)
		}
	}
	if ls[2].Name != "stairs_step_3" {
		t.Errorf("name %s", ls[2].Name)
	}
	warm := &Stage{Mode: ClosedLoop, Concurrency: 1, RequestCount: 5}
	sw := ConcurrencySweep([]int{1, 8, 32}, Stage{RequestCount: 100}, warm)
	if len(sw) != 3 || sw[1].Name != "concurrency_8" || sw[2].Profile.Concurrency != 32 || sw[0].Profile.RequestCount != 100 {
		t.Fatalf("sweep %+v", sw)
	}
	if sw[0].Warmup == warm || sw[0].Warmup.RequestCount != 5 {
		t.Fatal("warmup must be copied per level")
	}
}

func TestReadTrace(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader(`{"timestamp": 1000, "input_length": 10, "output_length": 5}

{"timestamp": 1500.5, "hash_ids": [1,2]}
{"timestamp": 1200}
`))
	if err != nil {
		t.Fatal(err)
	}
	offs := TraceOffsets(tr)
	want := []time.Duration{0, 200 * time.Millisecond, 500500 * time.Microsecond}
	for i := range want {
		if offs[i] != want[i] {
			t.Errorf("offset %d = %v, want %v", i, offs[i], want[i])
		}
	}
	if tr[0].InputLength != 10 {
		t.Errorf("entry %+v", tr[0])
	}
	_, err = ReadTrace(strings.NewReader("{\"timestamp\": 1}\n{oops\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want line 2 error, got %v", err)
	}
	if _, err := ReadTrace(strings.NewReader(`{"input_length": 3}`)); err == nil {
		t.Fatal("missing timestamp must fail")
	}
}

func TestStageValidate(t *testing.T) {
	bad := []Stage{
		{Mode: ClosedLoop, Concurrency: 0, RequestCount: 1},
		{Mode: ClosedLoop, Concurrency: 1},
		{Mode: OpenLoop, Rate: 0, RequestCount: 1},
		{Mode: Users, Duration: time.Second},
		{Mode: Replay},
	}
	for i, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrSchedule) {
			t.Errorf("%d: want ErrSchedule, got %v", i, err)
		}
	}
}
