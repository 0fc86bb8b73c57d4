package server

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// newLogger builds the node's structured logger.
func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// raftLogger adapts Raft's hclog output to the node's level: Raft is chatty
// (every election is a warning), so it logs one level above the node, and at
// least at warn.
func raftLogger(level string) hclog.Logger {
	lvl := hclog.LevelFromString(strings.ToUpper(level))
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	lvl = min(max(lvl+1, hclog.Warn), hclog.Error)
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: lvl, Output: os.Stderr})
}
