package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Log formats of --log-format.
const (
	LogText = "text"
	LogJSON = "json"
)

// CheckLogFormat accepts text, json, or "" (text).
func CheckLogFormat(format string) error {
	switch strings.ToLower(format) {
	case "", LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("log format %q must be text or json", format)
}

// NewLogger builds a structured logger writing to w at level (debug, info,
// warn or error) in format (text: key=value lines; json: one JSON object per
// line).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q must be debug, info, warn or error", level)
	}
	if err := CheckLogFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if strings.EqualFold(format, LogJSON) {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
