package modelserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentBin is the perfleet-agent binary TestMain builds; agentBuildErr is
// why it could not.
var (
	agentBin      string
	agentBuildErr error
)

// helperEnv makes the test binary act as a tiny agent (see runHelperAgent).
const helperEnv = "MODELSERVER_TEST_HELPER_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runHelperAgent()
		return
	}
	dir, err := os.MkdirTemp("", "modelserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "perfleet-agent")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	out, err := exec.Command(gobin, "build", "-o", agentBin, "github.com/perfleet/perfleet/agent").CombinedOutput()
	if err != nil {
		agentBuildErr = fmt.Errorf("go build perfleet-agent: %v\n%s", err, out)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// runHelperAgent launches `sleep 300` through a Manager, prints its PID and
// blocks until it is killed: the test kills it to check Pdeathsig.
func runHelperAgent() {
	m, err := NewManager(Config{LogDir: os.Getenv("MODELSERVER_TEST_LOG_DIR")})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s, err := m.Launch(context.Background(), Spec{ID: "orphan", Framework: FrameworkCommand, Command: []string{"sleep", "300"}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("pid %d\n", s.PID())
	select {}
}

// needAgent fails the test when the agent binary did not build.
func needAgent(t *testing.T) {
	t.Helper()
	if agentBuildErr != nil {
		t.Fatal(agentBuildErr)
	}
}

// newTestManager returns a manager over GPUs 0–3 with fast probing and a
// short grace period, stopped when the test ends.
func newTestManager(t *testing.T, mutate func(*Config)) *Manager {
	t.Helper()
	cfg := Config{GPUs: []int{0, 1, 2, 3}, LogDir: t.TempDir(), CacheDir: t.TempDir(), Executable: agentBin,
		StopGrace: 5 * time.Second, ProbeInterval: 50 * time.Millisecond, ReadinessTimeout: 2 * time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.StopAll(ctx); err != nil {
			t.Errorf("StopAll: %v", err)
		}
	})
	return m
}

// testCtx is a generous deadline for one step of a test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// writeScript writes an executable sh script.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// procStat returns a process's state letter and process group from
// /proc/PID/stat.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid pgrp …
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], pgrp, true
}

// alive reports whether pid runs; a zombie (dead, not yet reaped by its
// new parent) counts as gone.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	state, _, ok := procStat(pid)
	return ok && state != 'Z'
}

// groupMembers lists the live processes in process group pgid.
func groupMembers(pgid int) []int {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pg, ok := procStat(pid); ok && pg == pgid && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// eventually polls cond for up to a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDone waits for a server's process to exit and be cleaned up.
func waitDone(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("server %s did not exit", s.ID())
	}
}

// requireProc skips tests that inspect processes through /proc.
func requireProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
}

// logHas reports whether a server's in-memory log has a line containing s.
func logHas(srv *Server, s string) bool {
	for _, l := range srv.LastLogLines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// readPIDLine reads "pid N" from r.
func readPIDLine(r *bufio.Reader) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("%w (read %q)", err, line)
	}
	var pid int
	if _, err := fmt.Sscanf(line, "pid %d", &pid); err != nil {
		return 0, fmt.Errorf("helper said %q", line)
	}
	return pid, nil
}
