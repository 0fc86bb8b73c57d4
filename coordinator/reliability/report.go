package reliability

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Row is one line of the reliability report: a test, what it must show,
// and what was measured.
type Row struct {
	Test      string
	Criterion string
	Measured  string
	Pass      bool
}

// Report gathers rows from the suite's tests.
type Report struct {
	mu      sync.Mutex
	rows    []Row
	Profile string
}

// Add records a row.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// Rows returns the rows sorted by test name.
func (r *Report) Rows() []Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Row(nil), r.rows...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Test < out[j].Test })
	return out
}

// Markdown renders the report as bench/RELIABILITY.md.
func (r *Report) Markdown(command string, took time.Duration) string {
	var b strings.Builder
	b.WriteString("# Reliability results\n\n")
	b.WriteString("Written by `make reliability` (coordinator/reliability); do not edit by hand.\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, kernel())
	fmt.Fprintf(&b, "- profile: %s\n", r.Profile)
	fmt.Fprintf(&b, "- command: `%s`\n", command)
	fmt.Fprintf(&b, "- suite time: %s\n\n", took.Round(time.Second))
	b.WriteString("| Test | Criterion | Measured | Result |\n|---|---|---|---|\n")
	for _, row := range r.Rows() {
		res := "pass"
		if !row.Pass {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(row.Test), cell(row.Criterion), cell(row.Measured), res)
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(data))
}
