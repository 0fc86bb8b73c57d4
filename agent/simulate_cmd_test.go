package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSimulateRejectsCopiesBelowOne(t *testing.T) {
	for _, n := range []string{"0", "-2"} {
		cmd := newSimulateCmd()
		cmd.SetArgs([]string{"--copies", n, "--listen", "127.0.0.1:0"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--copies must be at least 1") {
			t.Fatalf("--copies %s: %v, want a --copies error", n, err)
		}
	}
}

func TestSimulateCopies(t *testing.T) {
	cmd := newSimulateCmd()
	out := &lockedBuffer{}
	cmd.SetArgs([]string{"--copies", "3", "--listen", "127.0.0.1:0", "--model", "m", "--itl-ms", "1"})
	cmd.SetOut(out)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- cmd.ExecuteContext(ctx) }()
	ready := regexp.MustCompile(`llmsim ready on (http://\S+) \(.*copies 3;`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("simulate returned %v before it was ready; output %q", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line with copies 3: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), `llmsim_copies{model_name="m"} 3`) ||
		!strings.Contains(string(body), `llmsim_copy_requests_running{model_name="m",copy="2"} 0`) {
		t.Fatalf("/metrics does not show 3 copies:\n%s", body)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("simulate: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("simulate did not stop after its context ended")
	}
}
