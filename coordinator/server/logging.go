package server

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/perfleet/perfleet/pkg/telemetry"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// newLogger builds the node's structured logger: text or JSON lines on
// stderr (an unknown level logs at info).
func newLogger(level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		level = "info"
	}
	lg, err := telemetry.NewLogger(os.Stderr, level, format)
	if err != nil { // Validate has checked the format
		lg, _ = telemetry.NewLogger(os.Stderr, level, telemetry.LogText)
	}
	return lg
}

// raftLogger adapts Raft's hclog output to the node's level and format:
// Raft is chatty (every election is a warning), so it logs one level above
// the node, and at least at warn.
func raftLogger(level, format string) hclog.Logger {
	lvl := hclog.LevelFromString(strings.ToUpper(level))
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	lvl = min(max(lvl+1, hclog.Warn), hclog.Error)
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: lvl, Output: os.Stderr, JSONFormat: strings.EqualFold(format, telemetry.LogJSON)})
}
