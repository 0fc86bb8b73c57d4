package main

import (
	"path/filepath"
	"time"
)

// The coordinator sections: each runs one of the bench programs, which
// print their figures as one JSON line.

// program builds ./bench/<name>, runs it with args and decodes its JSON
// line into out; it returns the run's wall time.
func (h *harness) program(name string, out any, args ...string) (time.Duration, error) {
	if err := h.build(name); err != nil {
		return 0, err
	}
	r, err := h.run(nil, filepath.Join(h.tools, name), args...)
	if err == nil {
		err = lastJSON(r.out, out)
	}
	return r.wall, err
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type distRow struct {
	Agents       int     `json:"agents"`
	Mode         string  `json:"mode"`
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Errors       float64 `json:"errors"`
}

type distResult struct {
	HistErr    float64   `json:"histogram_rel_error"`
	Rows       []distRow `json:"rows"`
	P50Diff    float64   `json:"p50_rel_diff"`
	P99Diff    float64   `json:"p99_rel_diff"`
	SameKP50   *float64  `json:"same_k_p50_rel_diff"`
	SameKP99   *float64  `json:"same_k_p99_rel_diff"`
	Scaling    float64   `json:"scaling"`
	Note       string    `json:"note"`
	Err        string    `json:"-"`
	Agents     string    `json:"-"`
	Rate, Dur  string    `json:"-"`
	WallSecond float64   `json:"-"`
}

func (h *harness) distributed() distResult {
	// The full profile runs each count twice: the difference between two
	// runs with the same count is the machine's noise floor.
	res := distResult{Agents: pick(h, "1,4,1,4", "1,4"), Rate: pick(h, "1000", "200"), Dur: pick(h, "15s", "3s")}
	wall, err := h.program("distbench", &res, "-bin", h.bin, "-agents", res.Agents,
		"-rate", res.Rate, "-duration", res.Dur, "-target-bin", filepath.Join(h.tools, "benchserver"), "-json")
	res.Err, res.WallSecond = errText(err), wall.Seconds()
	return res
}

type mergeRow struct {
	Agents      int     `json:"agents"`
	WindowsPerS float64 `json:"windows_per_s"`
	CPUPct      float64 `json:"leader_cpu_pct"`
	RSSMiB      float64 `json:"leader_rss_mib"`
	HeapMiB     float64 `json:"leader_heap_mib"`
	LagP50      float64 `json:"watch_lag_p50_ms"`
	LagP99      float64 `json:"watch_lag_p99_ms"`
	MergeP50    float64 `json:"merge_lag_p50_ms"`
	MergeP99    float64 `json:"merge_lag_p99_ms"`
	IdleCPUPct  float64 `json:"leader_idle_cpu_pct"`
	SetupS      float64 `json:"setup_s"`
	Note        string  `json:"note"`
}

type mergeResult struct {
	Rows       []mergeRow `json:"rows"`
	Err        string     `json:"-"`
	Agents     string     `json:"-"`
	Dur        string     `json:"-"`
	WallSecond float64    `json:"-"`
}

func (h *harness) mergeCost() mergeResult {
	res := mergeResult{Agents: pick(h, "100,1000,5000", "20"), Dur: pick(h, "15s", "3s")}
	wall, err := h.program("mergebench", &res, "-perfleet", filepath.Join(h.bin, "perfleet"), "-agents", res.Agents, "-duration", res.Dur, "-json")
	res.Err, res.WallSecond = errText(err), wall.Seconds()
	return res
}

type raftResult struct {
	Committed float64   `json:"committed"`
	Failed    float64   `json:"failed"`
	Rate      float64   `json:"rate"`
	P50       float64   `json:"p50_ms"`
	P99       float64   `json:"p99_ms"`
	Failover  []float64 `json:"failover_s"`
	Err       string    `json:"-"`
	Dur       string    `json:"-"`
	Kills     string    `json:"-"`
}

func (h *harness) raft() raftResult {
	res := raftResult{Dur: pick(h, "10s", "2s"), Kills: pick(h, "3", "1")}
	_, err := h.program("raftbench", &res, "-bin", filepath.Join(h.bin, "perfleet"), "-clients", "64",
		"-duration", res.Dur, "-kills", res.Kills, "-json")
	res.Err = errText(err)
	return res
}

type gossipResult struct {
	Members      int     `json:"members"`
	Profile      string  `json:"profile"`
	ConvergeS    float64 `json:"converge_s"`
	DetectFirstS float64 `json:"detect_first_s"`
	DetectAllS   float64 `json:"detect_all_s"`
	DetectP50S   float64 `json:"detect_p50_s"`
	DetectP99S   float64 `json:"detect_p99_s"`
	HeapMiB      float64 `json:"heap_mib"`
	Goroutines   float64 `json:"goroutines"`
	CPUS         float64 `json:"cpu_s"`
	Note         string  `json:"note"`
	Err          string  `json:"-"`
}

func (h *harness) membership() gossipResult {
	var res gossipResult
	_, err := h.program("gossipbench", &res, "-members", pick(h, "400", "50"), "-json")
	res.Err = errText(err)
	return res
}
