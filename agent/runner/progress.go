package runner

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress prints progress until stopped: on a terminal one line
// rewritten every second, elsewhere (logs, CI) a full line every 5 seconds.
func startProgress(w io.Writer, label string, p *loadgen.Progress, acc *metrics.Accumulator, st *loadgen.Stage) func() {
	if w == nil {
		return func() {}
	}
	tty := isTerminal(w)
	every := 5
	done := make(chan struct{})
	finished := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(finished)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		var lastDone int64
		for tick := 1; ; tick++ {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-tk.C:
			}
			if acc != nil {
				acc.Tick(metrics.Now())
			}
			if !tty && tick%every != 0 {
				continue
			}
			d := p.Done.Load()
			secs := 1.0
			if !tty {
				secs = float64(every)
			}
			line := fmt.Sprintf("[%s] %5.0fs sent %d done %d errors %d in-flight %d late %d | %.1f req/s",
				label, time.Since(t0).Seconds(), p.Sent.Load(), d, p.Errors.Load(), p.InFlight.Load(), p.Late.Load(),
				float64(d-lastDone)/secs)
			lastDone = d
			if st.RequestCount > 0 {
				line += fmt.Sprintf(" | %3.0f%%", 100*float64(d)/float64(st.RequestCount))
			} else if st.Duration > 0 {
				line += fmt.Sprintf(" | %3.0f%%", math.Min(100, 100*time.Since(t0).Seconds()/st.Duration.Seconds()))
			}
			if tty {
				fmt.Fprint(w, "\r"+line+"   ")
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// summaryRows are the record metrics of the console table, AIPerf's order.
var summaryRows = []string{metrics.TimeToFirstToken, metrics.TimeToSecondToken, metrics.RequestLatency,
	metrics.InterTokenLatency, metrics.OutputTokenThroughputPerUser, metrics.OutputSequenceLength,
	metrics.InputSequenceLength, metrics.RequestLatencyActualSend, metrics.ScheduleLag}

// PrintSummary prints AIPerf's console table for one level plus the
// system metrics and the generator self-check.
func PrintSummary(w io.Writer, label string, s *metrics.Summary) {
	fmt.Fprintf(w, "\nperfleet | LLM Metrics (AIPerf definitions) | %s\n", label)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Metric\tavg\tmin\tmax\tp99\tp90\tp50\tstd\t")
	for _, tag := range summaryRows {
		m, ok := s.Get(tag)
		if !ok {
			continue
		}
		st := m.Stats
		fmt.Fprintf(tw, "%s (%s)\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", m.Header, m.Unit,
			st.Avg, st.Min, st.Max, st.Pct(99), st.Pct(90), st.Pct(50), st.Std)
	}
	for _, m := range s.Metrics {
		if m.Stats != nil || m.Tag == metrics.MinRequestTimestamp || m.Tag == metrics.MaxResponseTimestamp {
			continue
		}
		fmt.Fprintf(tw, "%s (%s)\t%.2f\t\t\t\t\t\t\t\n", m.Header, m.Unit, m.Value)
	}
	tw.Flush()
	if len(s.Errors) > 0 {
		var parts []string
		for _, e := range s.Errors {
			parts = append(parts, fmt.Sprintf("%s=%d", e.Code, e.Count))
		}
		fmt.Fprintf(w, "errors: %s\n", strings.Join(parts, " "))
	}
	if sat := s.Saturation; sat != nil {
		fmt.Fprintf(w, "generator: %s (schedule lag p99 %.2f ms, achieved %.1f req/s", sat.Verdict, sat.LagP99Ms, sat.AchievedRate)
		if sat.TargetRate > 0 {
			fmt.Fprintf(w, " of %.1f target", sat.TargetRate)
		}
		fmt.Fprintf(w, ", CPU %.1f%% of %d cores, late sends %d)\n", sat.CPUPercent, sat.NumCPU, sat.LateSends)
		for _, r := range sat.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	fmt.Fprintf(w, "token counts: server %d, tokenizer %d, mismatches %d\n",
		s.TokenSources["server"], s.TokenSources["tokenizer"], s.TokenMismatch)
}
