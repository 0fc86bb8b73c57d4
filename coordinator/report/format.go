package report

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// dash stands for a missing, unknown or non-finite value.
const dash = "—"

// formatFloat formats v with dec decimals and comma thousands separators,
// e.g. 1234.5 → "1,234.5". NaN and ±Inf give dash.
func formatFloat(v float64, dec int) string {
	if !finite(v) {
		return dash
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if neg && strings.Trim(s, "0.") != "" { // no "-0.0"
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// formatInt formats n with comma thousands separators.
func formatInt(n int64) string { return formatFloat(float64(n), 0) }

// formatMs formats a latency in milliseconds: two decimals below 10 ms, one
// below 10 s, none above.
func formatMs(v float64) string {
	a := math.Abs(v)
	switch {
	case a < 10:
		return formatFloat(v, 2)
	case a < 10000:
		return formatFloat(v, 1)
	default:
		return formatFloat(v, 0)
	}
}

// formatTokens formats a token throughput (tokens/s) with one decimal.
func formatTokens(v float64) string { return formatFloat(v, 1) }

// formatRate formats a request rate (req/s): two decimals below 100, one
// above.
func formatRate(v float64) string {
	if math.Abs(v) < 100 {
		return formatFloat(v, 2)
	}
	return formatFloat(v, 1)
}

// formatUSD formats a dollar amount: cents from $0.10 up, two significant
// digits below (at most six decimals), e.g. $1,234.50, $0.42, $0.042.
func formatUSD(v float64) string {
	if !finite(v) {
		return dash
	}
	a := math.Abs(v)
	dec := 2
	if a > 0 && a < 0.1 {
		dec = min(int(math.Ceil(-math.Log10(a)))+1, 6)
	}
	s := formatFloat(a, dec)
	if v < 0 && strings.Trim(s, "0.,") != "" {
		return "-$" + s
	}
	return "$" + s
}

// optional returns dash when v is zero (meaning "not measured" or "unknown")
// and f(v) otherwise.
func optional(v float64, f func(float64) string) string {
	if v == 0 {
		return dash
	}
	return f(v)
}

// formatTime formats t in UTC; the zero time gives dash.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatDuration formats the time from start to end, rounded to seconds;
// dash when either is unknown or end is before start.
func formatDuration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return dash
	}
	d := end.Sub(start).Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return strconv.Itoa(h) + "h " + pad2(m) + "m " + pad2(s) + "s"
	case m > 0:
		return strconv.Itoa(m) + "m " + pad2(s) + "s"
	default:
		return strconv.Itoa(s) + "s"
	}
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// orDash returns s, or dash when s is blank.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return dash
	}
	return s
}

// truncate shortens s to at most n runes, ending it with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// statusClass maps a job or candidate status to a badge CSS class.
func statusClass(status string) string {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-':
			return -1
		}
		return r
	}, strings.ToLower(status))
	switch s {
	case "completed", "complete", "succeeded", "success", "ok", "ranked":
		return "ok"
	case "failed", "failure", "error", "errored":
		return "bad"
	case "inprogress", "running", "pending", "starting", "executing", "queued":
		return "run"
	case "skipped", "infeasible", "unranked", "stopping":
		return "warn"
	default:
		return "muted"
	}
}
