package modelserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSimulatorLaunchReadyStop(t *testing.T) {
	needAgent(t)
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	s, err := m.Launch(ctx, Spec{Framework: FrameworkSimulator, Model: "meta-llama/Llama-3.1-8B", ServedModelName: "llama", GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Status() != StatusReady || s.SetupTime() <= 0 || s.FailureReason() != "" {
		t.Fatalf("status %s, setup %v, reason %q", s.Status(), s.SetupTime(), s.FailureReason())
	}
	if s.Port() == 0 || s.URL() != "http://127.0.0.1:"+strconv.Itoa(s.Port()) || !slices.Equal(s.Devices(), []int{0}) {
		t.Fatalf("url %s, devices %v", s.URL(), s.Devices())
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(s.URL() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), `"llama"`) {
		t.Fatalf("/v1/models: %s", body)
	}
	if b, _ := os.ReadFile(s.LogPath()); !strings.Contains(string(b), "llmsim ready on") {
		t.Fatalf("log file: %q", b)
	}
	if l := m.List(); len(l) != 1 || l[0] != s || m.Allocator().Free() != 3 {
		t.Fatalf("list %v, free %d", l, m.Allocator().Free())
	}
	if err := m.Stop(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if s.Status() != StatusStopped || alive(s.PID()) || len(m.List()) != 0 || m.Allocator().Free() != 4 {
		t.Fatalf("after stop: status %s, alive %v, %d listed, %d free", s.Status(), alive(s.PID()), len(m.List()), m.Allocator().Free())
	}
	if err := m.Stop(ctx, s.ID()); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("second stop: %v", err)
	}
}

// TestSimulatorCopiesGetGPUsTimesCopies launches a simulator holding two
// copies of one GPU each: it gets two devices and serves two copies, and a
// spec needing more devices than are free fails with ErrNoGPUs.
func TestSimulatorCopiesGetGPUsTimesCopies(t *testing.T) {
	needAgent(t)
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	s, err := m.Launch(ctx, Spec{ID: "dp", Framework: FrameworkSimulator, Model: "m", GPUs: 1, Copies: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Devices(), []int{0, 1}) || m.Allocator().Free() != 2 || s.Spec().Copies != 2 {
		t.Fatalf("devices %v, %d free, copies %d", s.Devices(), m.Allocator().Free(), s.Spec().Copies)
	}
	if i := slices.Index(s.Argv(), "--copies"); i < 0 || i+1 >= len(s.Argv()) || s.Argv()[i+1] != "2" {
		t.Fatalf("argv %q has no --copies 2", s.Argv())
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), `llmsim_copies{model_name="m"} 2`) {
		t.Fatalf("/metrics does not show 2 copies:\n%s", body)
	}
	for name, spec := range map[string]Spec{
		"2 GPUs x 2 copies": {Framework: FrameworkSimulator, Model: "m", GPUs: 2, Copies: 2},
		"1 GPU x 3 copies":  {Framework: FrameworkVLLM, Model: "m", GPUs: 1, Copies: 3},
	} {
		if _, err := m.Launch(ctx, spec); !errors.Is(err, ErrNoGPUs) {
			t.Errorf("%s with 2 free: %v, want ErrNoGPUs", name, err)
		}
	}
	if _, err := m.Launch(ctx, Spec{Framework: FrameworkTGI, Model: "m", GPUs: 1, Copies: 2}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("TGI copies: %v, want ErrInvalidSpec", err)
	}
	if err := m.Stop(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if m.Allocator().Free() != 4 {
		t.Fatalf("%d free after stop, want 4", m.Allocator().Free())
	}
}

func TestSimulatorS3ModelReusesCache(t *testing.T) {
	needAgent(t)
	f := newFakeS3(t)
	putModel(t, f)
	m := newTestManager(t, func(c *Config) { c.S3 = f })
	ctx := testCtx(t)
	spec := Spec{ID: "sim", Framework: FrameworkSimulator, Model: "s3://models/llama", SimulatedGPU: "L4"}
	var paths []string
	var gets int64
	for i := range 2 {
		s, err := m.Launch(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(s.ModelPath(), "config.json")); string(got) != `{"arch":"llama"}` {
			t.Fatalf("launch %d: model at %s has config %q", i, s.ModelPath(), got)
		}
		if !slices.Contains(s.Argv(), "llama") || !slices.Contains(s.Argv(), "L4") {
			t.Fatalf("argv %q", s.Argv())
		}
		paths = append(paths, s.ModelPath())
		if i == 1 && f.gets.Load() != gets {
			t.Fatalf("second launch sent %d GETs; the ETags had not changed", f.gets.Load()-gets)
		}
		gets = f.gets.Load()
		if err := m.Stop(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if paths[0] != paths[1] {
		t.Fatalf("second launch used %s, first %s", paths[1], paths[0])
	}
}

func TestCommandPlaceholdersAndDevices(t *testing.T) {
	needAgent(t)
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	spec := func(id string) Spec {
		return Spec{ID: id, Framework: FrameworkCommand, GPUs: 2, Model: "tiny",
			Command: []string{"sh", "-c", `echo "devices=$CUDA_VISIBLE_DEVICES port={port} gpus={gpus} model={model}"; exec "$0" simulate --listen 127.0.0.1:{port} --model {model}`, agentBin}}
	}
	a, err := m.Launch(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Launch(ctx, spec("b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Launch(ctx, spec("c")); !errors.Is(err, ErrNoGPUs) {
		t.Fatalf("third launch: %v, want ErrNoGPUs", err)
	}
	for _, s := range []*Server{a, b} {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("devices=%s port=%d gpus=2 model=tiny", joinInts(s.Devices()), s.Port())
		if !logHas(s, want) {
			t.Fatalf("%s: no %q in %q", s.ID(), want, s.LastLogLines())
		}
	}
	if slices.ContainsFunc(a.Devices(), func(d int) bool { return slices.Contains(b.Devices(), d) }) || a.Port() == b.Port() {
		t.Fatalf("shared GPUs or port: %v/%d and %v/%d", a.Devices(), a.Port(), b.Devices(), b.Port())
	}
	if err := m.StopAll(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Status() != StatusStopped || b.Status() != StatusStopped || m.Allocator().Free() != 4 || len(m.List()) != 0 {
		t.Fatalf("after StopAll: %s %s, %d free", a.Status(), b.Status(), m.Allocator().Free())
	}
}

func TestCommandExitsEarly(t *testing.T) {
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	script := writeScript(t, `echo "loading weights"; echo "CUDA error: out of memory" >&2; exit 3`)
	s, err := m.Launch(ctx, Spec{ID: "early", Framework: FrameworkCommand, Command: []string{script}, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Wait: %v", err)
	}
	waitDone(t, s)
	reason := s.FailureReason()
	if s.Status() != StatusFailed || s.SetupTime() != 0 ||
		!regexp.MustCompile(`^model server exited with status 3 before it became ready \(after [0-9.]+m?s\); last log lines:\n`).MatchString(reason) ||
		!strings.Contains(reason, "loading weights\nCUDA error: out of memory") {
		t.Fatalf("status %s, reason %q", s.Status(), reason)
	}
	if m.Allocator().Free() != 4 {
		t.Fatal("GPUs not released after the exit")
	}
	if err := m.Stop(ctx, "early"); err != nil || len(m.List()) != 0 || s.Status() != StatusFailed {
		t.Fatalf("stop after failure: %v, %d listed, %s", err, len(m.List()), s.Status())
	}
}

func TestCommandNeverReadyIsKilled(t *testing.T) {
	requireProc(t)
	m := newTestManager(t, func(c *Config) { c.StopGrace = time.Second })
	ctx := testCtx(t)
	script := writeScript(t, `echo "starting up"; sleep 300 & while :; do sleep 1; done`)
	s, err := m.Launch(ctx, Spec{Framework: FrameworkCommand, Command: []string{script}, ReadinessTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Wait: %v", err)
	}
	waitDone(t, s)
	reason := s.FailureReason()
	if !strings.Contains(reason, "did not become ready within 2s") || !strings.Contains(reason, "starting up") ||
		!strings.Contains(reason, "/health") {
		t.Fatalf("reason %q", reason)
	}
	eventually(t, "no process left in the group", func() bool { return len(groupMembers(s.PID())) == 0 })
}

func TestCommandIgnoringSIGTERMIsKilled(t *testing.T) {
	requireProc(t)
	m := newTestManager(t, func(c *Config) { c.StopGrace = time.Second })
	ctx := testCtx(t)
	script := writeScript(t, `trap '' TERM; echo "ignoring TERM"; while :; do sleep 1; done`)
	s, err := m.Launch(ctx, Spec{Framework: FrameworkCommand, Command: []string{script}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the trap", func() bool { return logHas(s, "ignoring TERM") })
	start := time.Now()
	if err := m.Stop(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("stopped after %v, before the grace period: SIGTERM was not ignored?", took)
	}
	if s.Status() != StatusStopped || alive(s.PID()) {
		t.Fatalf("status %s, leader alive %v", s.Status(), alive(s.PID()))
	}
	eventually(t, "no process left in the group", func() bool { return len(groupMembers(s.PID())) == 0 })
}

func TestCommandChildGoneAfterStop(t *testing.T) {
	requireProc(t)
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	script := writeScript(t, `sleep 300 & echo "child $!"; sh -c 'sleep 300' & echo "child $!"; wait`)
	s, err := m.Launch(ctx, Spec{Framework: FrameworkCommand, Command: []string{script}})
	if err != nil {
		t.Fatal(err)
	}
	var children []int
	eventually(t, "two children", func() bool {
		children = children[:0]
		for _, l := range s.LastLogLines() {
			if pid, ok := strings.CutPrefix(l, "child "); ok {
				n, _ := strconv.Atoi(pid)
				children = append(children, n)
			}
		}
		return len(children) == 2
	})
	for _, c := range children {
		if !alive(c) {
			t.Fatalf("child %d not running before Stop", c)
		}
	}
	if err := m.Stop(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(children, s.PID()) {
		eventually(t, fmt.Sprintf("process %d to be gone", c), func() bool { return !alive(c) })
	}
}

func TestServerKilledAfterReadyFails(t *testing.T) {
	needAgent(t)
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	s, err := m.Launch(ctx, Spec{Framework: FrameworkSimulator, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(s.PID(), syscall.SIGKILL)
	waitDone(t, s)
	if s.Status() != StatusFailed || !strings.Contains(s.FailureReason(), "was killed by signal 9 (killed) after it became ready") {
		t.Fatalf("status %s, reason %q", s.Status(), s.FailureReason())
	}
	if err := s.Wait(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Wait after the crash: %v", err)
	}
}

func TestLaunchErrorsReleaseEverything(t *testing.T) {
	m := newTestManager(t, nil)
	ctx := testCtx(t)
	script := writeScript(t, `while :; do sleep 1; done`)
	s, err := m.Launch(ctx, Spec{ID: "dup", Framework: FrameworkCommand, Command: []string{script}, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		spec Spec
		want error
	}{
		"duplicate ID":   {Spec{ID: "dup", Framework: FrameworkCommand, Command: []string{script}}, ErrDuplicateID},
		"bad ID":         {Spec{ID: "../x", Framework: FrameworkCommand, Command: []string{script}}, ErrInvalidSpec},
		"invalid spec":   {Spec{Framework: FrameworkVLLM}, ErrInvalidSpec},
		"too many GPUs":  {Spec{Framework: FrameworkCommand, Command: []string{script}, GPUs: 4}, ErrNoGPUs},
		"port taken":     {Spec{Framework: FrameworkCommand, Command: []string{script}, Port: s.Port()}, ErrInvalidSpec},
		"no program":     {Spec{Framework: FrameworkCommand, Command: []string{"/nonexistent/server"}, GPUs: 2}, ErrStart},
		"missing model":  {Spec{Framework: FrameworkCommand, Command: []string{script}, Model: "file:///nonexistent", GPUs: 1}, ErrModelSource},
		"s3 without SDK": {Spec{Framework: FrameworkCommand, Command: []string{script}, Model: "s3://b/m"}, ErrModelSource},
	}
	for name, tc := range cases {
		if _, err := m.Launch(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	if l := m.List(); len(l) != 1 || m.Allocator().Free() != 3 {
		t.Fatalf("after failed launches: %d listed, %d GPUs free", len(l), m.Allocator().Free())
	}
}

// TestPdeathsigKillsServers kills a helper agent with SIGKILL (no StopAll)
// and checks that the kernel kills the server it started.
func TestPdeathsigKillsServers(t *testing.T) {
	requireProc(t)
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux-only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "MODELSERVER_TEST_LOG_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid, err := readPIDLine(bufio.NewReader(out))
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatalf("server %d not running", pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	eventually(t, "the orphaned server to die", func() bool { return !alive(pid) })
}
