//go:build !cgo

package gpu

import (
	"strings"
	"testing"
)

func TestOpenStatic(t *testing.T) {
	logger, logs := newTestLogger()
	b := Open(logger)
	inv := b.Inventory()
	if _, ok := b.(*NoneBackend); !ok || inv.Source != SourceNone || len(inv.Devices) != 0 || inv.Reason != staticReason {
		t.Errorf("Open = %T %+v, want the none backend", b, inv)
	}
	if !strings.Contains(logs.String(), "no GPU") {
		t.Errorf("log = %q", logs)
	}
	if Open(nil) == nil || b.Close() != nil {
		t.Error("Open(nil) or Close")
	}
}
