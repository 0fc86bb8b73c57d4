package metrics

import "fmt"

// Saturation verdicts.
const (
	VerdictOK             = "ok"
	VerdictGeneratorBound = "generator-bound"
)

// Thresholds of the generator self-check.
const (
	MaxLagP99Ms       = 5.0
	MinAchievedRatio  = 0.95
	LateSendThreshold = 1.0 // ms: a send this late or later counts as late
)

// SaturationInput is what the generator knows about its own health.
type SaturationInput struct {
	// TargetRate is the scheduled request rate (req/s); 0 for closed loop.
	TargetRate float64
	// Sent is how many requests were sent over SendSeconds (first to last
	// scheduled send of the level).
	Sent        int64
	SendSeconds float64
	// LagP99Ms is the p99 schedule lag (actual − scheduled send).
	LagP99Ms float64
	// CPUSeconds is the generator process's CPU time over WallSeconds.
	CPUSeconds  float64
	WallSeconds float64
	NumCPU      int
	LateSends   int64
	Dropped     int64
	// CapLimited is set when an open-loop run hit its max_concurrency cap;
	// the verdict rules still apply and the reason says so.
	CapLimited bool
}

// Saturation is the generator self-check attached to every result: did the
// load generator keep up with the schedule?
//
//	achieved_rate  = sent / send_seconds
//	achieved_ratio = achieved_rate / target_rate            (open loop only)
//	verdict        = "generator-bound" if lag_p99 > 5 ms or achieved_ratio < 0.95, else "ok"
type Saturation struct {
	Verdict       string   `json:"verdict"`
	Reasons       []string `json:"reasons,omitempty"`
	LagP99Ms      float64  `json:"schedule_lag_p99_ms"`
	TargetRate    float64  `json:"target_request_rate,omitempty"`
	AchievedRate  float64  `json:"achieved_request_rate"`
	AchievedRatio float64  `json:"achieved_rate_ratio,omitempty"`
	CPUSeconds    float64  `json:"generator_cpu_seconds"`
	CPUPercent    float64  `json:"generator_cpu_percent"` // of all cores
	NumCPU        int      `json:"num_cpu"`
	LateSends     int64    `json:"late_sends"`
	DroppedSends  int64    `json:"dropped_sends"`
	CapLimited    bool     `json:"max_concurrency_limited,omitempty"`
}

// CheckSaturation applies the self-check rules.
func CheckSaturation(in SaturationInput) Saturation {
	s := Saturation{Verdict: VerdictOK, LagP99Ms: in.LagP99Ms, TargetRate: in.TargetRate,
		CPUSeconds: in.CPUSeconds, NumCPU: in.NumCPU, LateSends: in.LateSends, DroppedSends: in.Dropped,
		CapLimited: in.CapLimited}
	if in.SendSeconds > 0 {
		s.AchievedRate = float64(in.Sent) / in.SendSeconds
	}
	if in.WallSeconds > 0 && in.NumCPU > 0 {
		s.CPUPercent = 100 * in.CPUSeconds / (in.WallSeconds * float64(in.NumCPU))
	}
	if in.LagP99Ms > MaxLagP99Ms {
		s.Reasons = append(s.Reasons, fmt.Sprintf("schedule lag p99 %.2f ms > %.0f ms", in.LagP99Ms, MaxLagP99Ms))
	}
	if in.TargetRate > 0 && in.SendSeconds > 0 {
		s.AchievedRatio = s.AchievedRate / in.TargetRate
		if s.AchievedRatio < MinAchievedRatio {
			s.Reasons = append(s.Reasons, fmt.Sprintf("achieved %.1f req/s = %.1f%% of target %.1f req/s",
				s.AchievedRate, 100*s.AchievedRatio, in.TargetRate))
		}
	}
	if len(s.Reasons) > 0 && in.CapLimited {
		s.Reasons = append(s.Reasons, "max_concurrency cap was reached: sends waited for a free slot")
	}
	if len(s.Reasons) > 0 {
		s.Verdict = VerdictGeneratorBound
	}
	return s
}
