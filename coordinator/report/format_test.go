package report

import (
	"math"
	"testing"
	"time"
)

func TestFormatting(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		got, want string
	}{
		{formatFloat(1234.5, 1), "1,234.5"},
		{formatFloat(1234567.891, 2), "1,234,567.89"},
		{formatFloat(999.96, 1), "1,000.0"},
		{formatFloat(-1234.5, 1), "-1,234.5"},
		{formatFloat(-0.01, 1), "0.0"},
		{formatFloat(0, 0), "0"},
		{formatFloat(nan, 1), "—"},
		{formatFloat(-inf, 1), "—"},
		{formatInt(1234567), "1,234,567"},
		{formatInt(-12), "-12"},
		{formatTokens(1234.54), "1,234.5"},
		{formatMs(12.34), "12.3"},
		{formatMs(7.856), "7.86"},
		{formatMs(12345.6), "12,346"},
		{formatMs(inf), "—"},
		{formatRate(9.156), "9.16"},
		{formatRate(123.45), "123.5"}, // 123.45 is 123.4500000000000028...
		{formatUSD(0.4213), "$0.42"},
		{formatUSD(7.09), "$7.09"},
		{formatUSD(1234.5), "$1,234.50"},
		{formatUSD(0.042), "$0.042"},
		{formatUSD(0.00123), "$0.0012"},
		{formatUSD(0), "$0.00"},
		{formatUSD(-2.5), "-$2.50"},
		{formatUSD(nan), "—"},
		{optional(0, formatUSD), "—"},
		{optional(1, formatUSD), "$1.00"},
		{formatCompact(20, 3), "20"},
		{formatCompact(2.5, 3), "2.5"},
		{formatCompact(1500.125, 3), "1,500.125"},
		{formatTime(time.Time{}), "—"},
		{formatTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))), "2025-01-02 02:04:05 UTC"},
		{formatDuration(t0, t0.Add(90*time.Second)), "1m 30s"},
		{formatDuration(t0, t0.Add(3*time.Hour+5*time.Second)), "3h 00m 05s"},
		{formatDuration(t0, t0.Add(1400*time.Millisecond)), "1s"},
		{formatDuration(t0, time.Time{}), "—"},
		{formatDuration(t0, t0.Add(-time.Hour)), "—"},
		{truncate("abcdef", 4), "abc…"},
		{truncate("äöü", 3), "äöü"},
		{orDash("  "), "—"},
		{statusClass("Completed"), "ok"},
		{statusClass("Failed"), "bad"},
		{statusClass("InProgress"), "run"},
		{statusClass("IN_PROGRESS"), "run"},
		{statusClass("Skipped"), "warn"},
		{statusClass("Stopped"), "muted"},
		{statusClass("whatever"), "muted"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
