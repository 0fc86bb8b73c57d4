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

// raftLogger adapts Raft's hclog output to the node's level: Raft is chatty,
// so it logs one level above the node.
func raftLogger(level string) hclog.Logger {
	lvl := hclog.LevelFromString(strings.ToUpper(level))
	if lvl == hclog.NoLevel || lvl < hclog.Warn {
		lvl = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: lvl, Output: os.Stderr})
}
