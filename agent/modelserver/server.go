package modelserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Status is a server's lifecycle state.
type Status string

// A server is starting until its health path answers 200 (ready) or it
// fails; failed and stopped are final.
const (
	StatusStarting Status = "starting"
	StatusReady    Status = "ready"
	StatusFailed   Status = "failed"
	StatusStopped  Status = "stopped"
)

// Timing bounds of the process lifecycle.
const (
	killWait     = 15 * time.Second // exit after SIGKILL
	logDrainWait = 2 * time.Second  // output still buffered after exit
	maxReason    = 4096             // bytes of log lines in a failure reason
	probeTimeout = 5 * time.Second  // one health request
)

// Server is one launched model server. Its methods are safe for concurrent
// use.
type Server struct {
	id        string
	spec      Spec
	port      int
	devices   []int
	model     string
	argv      []string
	healthURL string
	launched  time.Time
	cmd       *exec.Cmd
	logs      *logSink
	logPath   string
	logDone   chan struct{} // closed when the output pipe is drained
	settled   chan struct{} // closed when the status leaves starting
	exited    chan struct{} // closed after exit, cleanup and release
	release   func()        // frees GPUs and port; run once after exit
	docker    string        // docker binary, for RuntimeDocker cleanup

	mu       sync.Mutex
	status   Status
	setup    time.Duration
	reason   string
	stopping bool
}

// ID returns the server's ID.
func (s *Server) ID() string { return s.id }

// Spec returns the spec the server was launched with (ID, port, health
// path and copies filled in).
func (s *Server) Spec() Spec { return s.spec }

// URL returns the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// Port returns the loopback port the server listens on.
func (s *Server) Port() int { return s.port }

// Devices returns the GPU indexes assigned to the server.
func (s *Server) Devices() []int { return append([]int(nil), s.devices...) }

// ModelPath returns what the server was given as its model: a local path
// (s3:// and file:// sources) or a hub ID.
func (s *Server) ModelPath() string { return s.model }

// Argv returns the command line the server was started with.
func (s *Server) Argv() []string { return append([]string(nil), s.argv...) }

// PID returns the server's process ID, which is also its process group ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// LogPath returns the server's log file (rotated to LogPath()+".1").
func (s *Server) LogPath() string { return s.logPath }

// LastLogLines returns the newest lines of output, oldest first.
func (s *Server) LastLogLines() []string { return s.logs.LastLines() }

// Status returns the server's current state.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// SetupTime returns the time from Launch to ready (model download
// included), or 0 if the server never became ready.
func (s *Server) SetupTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setup
}

// FailureReason explains a failed server, with its last log lines; it is
// empty unless the status is failed.
func (s *Server) FailureReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Wait blocks until the server is ready (nil) or has failed or stopped
// first (an error wrapping ErrNotReady with the reason), or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.settled:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.status {
	case StatusReady:
		return nil
	case StatusFailed:
		return fmt.Errorf("%w: %s", ErrNotReady, s.reason)
	default:
		return fmt.Errorf("%w: server %s was %s", ErrNotReady, s.id, s.status)
	}
}

// Done is closed once the server's process has exited, its process group
// has been killed and its GPUs and port are released.
func (s *Server) Done() <-chan struct{} { return s.exited }

// settle moves a non-final server to status with reason; it reports
// whether it did.
func (s *Server) settle(status Status, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == StatusFailed || s.status == StatusStopped || (s.status == StatusReady && status == StatusReady) {
		return false
	}
	if s.status == StatusStarting {
		close(s.settled)
	}
	s.status, s.reason = status, reason
	if status == StatusReady {
		s.setup = time.Since(s.launched)
	}
	return true
}

// run starts the process and waits for it on a locked OS thread (Pdeathsig
// is tied to the thread that forked). The start error goes to started.
// After the exit it kills what is left of the process group, drains the
// output, settles the status and releases the server's resources.
func (s *Server) run(started chan<- error, pr *os.File) {
	runtime.LockOSThread()
	err := s.cmd.Start()
	started <- err
	if err != nil {
		runtime.UnlockOSThread()
		return
	}
	go func() { // the pipe's only reader
		defer close(s.logDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			_, _ = s.logs.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	waitErr := s.cmd.Wait()
	runtime.UnlockOSThread()
	_ = signalGroup(s.cmd.Process.Pid, syscall.SIGKILL) // children it left behind
	if s.spec.Runtime == RuntimeDocker {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = exec.CommandContext(ctx, s.docker, "rm", "-f", containerName(s.id)).Run()
		cancel()
	}
	select {
	case <-s.logDone:
	case <-time.After(logDrainWait): // a process outside the group holds the pipe
		_ = pr.Close()
		<-s.logDone
	}
	_ = pr.Close()
	_ = s.logs.Close()

	s.mu.Lock()
	stopping, status := s.stopping, s.status
	s.mu.Unlock()
	how := exitDescription(s.cmd.ProcessState, waitErr)
	switch {
	case stopping:
		s.settle(StatusStopped, "")
	case status == StatusStarting:
		s.settle(StatusFailed, fmt.Sprintf("model server %s before it became ready (after %v)%s",
			how, roundDuration(time.Since(s.launched)), s.logTail()))
	default:
		s.settle(StatusFailed, fmt.Sprintf("model server %s after it became ready (up %v)%s",
			how, roundDuration(time.Since(s.launched)), s.logTail()))
	}
	s.release()
	close(s.exited)
}

// stop sends SIGTERM to the process group, then SIGKILL after grace or
// when ctx ends, and waits for the exit and cleanup.
func (s *Server) stop(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = signalGroup(s.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.exited:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = signalGroup(s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("modelserver: server %s (pid %d) still running %v after SIGKILL", s.id, s.cmd.Process.Pid, killWait)
	}
}

// logTail formats the last log lines for a failure reason.
func (s *Server) logTail() string {
	lines := s.logs.LastLines()
	if len(lines) == 0 {
		return "; no log output"
	}
	text := strings.Join(lines, "\n")
	if len(text) > maxReason {
		cut := len(text) - maxReason
		for cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut++
		}
		text = "…" + text[cut:]
	}
	return "; last log lines:\n" + text
}

// signalGroup signals every process in the group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return errors.New("modelserver: no process")
	}
	return syscall.Kill(-pid, sig)
}

// exitDescription says how a process ended: "exited with status 1" or
// "was killed by signal 9 (killed)".
func exitDescription(ps *os.ProcessState, waitErr error) string {
	if ps == nil {
		return fmt.Sprintf("could not be waited for (%v)", waitErr)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// roundDuration rounds for humans: 1.2s, 3m4s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// probe polls the health URL every interval until it answers 200 (ready),
// the server settles or exits, or timeout passes; on timeout the server is
// failed and stopped (SIGTERM, SIGKILL after grace).
func (s *Server) probe(interval, timeout, grace time.Duration) {
	// No proxy: the URL is loopback and HTTP_PROXY must not divert it.
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: probeTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := "no answer yet"
	for {
		ok, result := probeOnce(client, s.healthURL)
		if ok {
			s.settle(StatusReady, "")
			return
		}
		last = result
		select {
		case <-s.exited:
			return
		case <-s.settled:
			return
		case <-deadline.C:
			reason := fmt.Sprintf("model server did not become ready within %v (last probe of %s: %s)%s",
				timeout, s.healthURL, last, s.logTail())
			if s.settle(StatusFailed, reason) {
				_ = s.stop(context.Background(), grace)
			}
			return
		case <-tick.C:
		}
	}
}

// probeOnce sends one GET and reports whether it answered 200, or what it
// got instead.
func probeOnce(client *http.Client, url string) (bool, string) {
	resp, err := client.Get(url)
	if err != nil {
		return false, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, "HTTP " + resp.Status
}

// pickPort returns a free loopback TCP port that is not in taken. The port
// is free when checked; the server binds it moments later.
func pickPort(taken map[int]string) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("%w: pick a port: %w", ErrStart, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if _, ok := taken[port]; !ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("%w: no free loopback port found", ErrStart)
}
