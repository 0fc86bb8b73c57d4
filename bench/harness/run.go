package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// harness holds what every section needs: the profile, where binaries
// and scratch files live, the log, and the commands run so far (written
// into the report, so each figure can be reproduced).
type harness struct {
	quick   bool
	root    string // repository root
	bin     string // perfleet binaries (make build)
	tools   string // binaries built by the harness: loadgen, benchserver, vegeta, the bench programs
	scratch string
	log     io.Writer
	mu      sync.Mutex // cmds, fails
	cmds    []string
	fails   []string
}

// pick returns full or quick by profile.
func pick[T any](h *harness, full, quick T) T {
	if h.quick {
		return quick
	}
	return full
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, format+"\n", args...)
}

// fail records a section's failure; the run goes on and exits non-zero.
func (h *harness) fail(section string, err error) {
	msg := fmt.Sprintf("%s: %v", section, err)
	h.fails = append(h.fails, msg)
	h.logf("FAILED %s", msg)
}

// build compiles ./bench/<pkg> into the tools directory, named after the
// package's last element ("loadgen/server" → "server" is renamed
// "benchserver"), and keeps it out of the report's command list.
func (h *harness) build(pkg string) error {
	name := filepath.Base(pkg)
	if name == "server" {
		name = "benchserver"
	}
	n := len(h.cmds)
	_, err := h.run(nil, "go", "build", "-o", filepath.Join(h.tools, name), "./bench/"+pkg)
	h.cmds = h.cmds[:n]
	if err != nil {
		return fmt.Errorf("building ./bench/%s: %w", pkg, err)
	}
	return nil
}

// result of one command.
type ran struct {
	out  string        // stdout
	cpu  time.Duration // user+system CPU of the process itself
	wall time.Duration
}

// run runs a command, teeing its output to the log, and records it for the
// report's command list (with the repository root and scratch paths
// shortened).
func (h *harness) run(stdin io.Reader, name string, args ...string) (ran, error) {
	h.note(name, args...)
	cmd := exec.Command(name, args...)
	cmd.Dir = h.root
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, h.log)
	cmd.Stderr = h.log
	start := time.Now()
	err := cmd.Run()
	r := ran{out: out.String(), wall: time.Since(start)}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return r, nil
}

func (h *harness) note(name string, args ...string) {
	line := strings.Join(append([]string{name}, quoteArgs(args)...), " ")
	line = strings.ReplaceAll(line, h.tools+"/", "")
	line = strings.ReplaceAll(line, h.scratch+"/", "$SCRATCH/")
	line = strings.ReplaceAll(line, h.root+"/", "")
	h.mu.Lock()
	h.cmds = append(h.cmds, line)
	h.mu.Unlock()
	h.logf("$ %s", line)
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

// lastJSON decodes the last non-empty line of out into v.
func lastJSON(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") {
			return json.Unmarshal([]byte(l), v)
		}
	}
	return fmt.Errorf("no JSON line in the output")
}

// daemon is a background process the harness started (a target server).
type daemon struct {
	cmd  *exec.Cmd
	name string
}

func (h *harness) start(name string, args ...string) (*daemon, error) {
	h.note(name, append(args, "&")...)
	cmd := exec.Command(name, args...)
	cmd.Dir = h.root
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &daemon{cmd: cmd, name: filepath.Base(name)}, nil
}

func (d *daemon) stop() {
	if d == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// cpuSeconds is the process's CPU time so far, from /proc (for daemons).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // USER_HZ
}

// waitHTTP waits until url answers (any status), for at most 10 s.
func waitHTTP(method, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within 10 s: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// median of the non-NaN values (0 when none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// machine describes the host for the report's header.
func machine() (cpu string, cores int, kernel string) {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	out, _ := exec.Command("nproc").Output()
	fmt.Sscan(string(out), &cores)
	k, _ := exec.Command("uname", "-r").Output()
	return cpu, cores, strings.TrimSpace(string(k))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// version runs a command and returns the first line it prints matching
// want (stdout or stderr).
func version(want string, name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, want) {
			return strings.TrimSpace(l)
		}
	}
	return "?"
}
