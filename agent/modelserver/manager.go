package modelserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Manager. Zero fields take the defaults noted.
type Config struct {
	// GPUs are the agent's GPU indexes, used when Allocator is nil.
	GPUs []int
	// Allocator assigns GPUs; nil builds one over GPUs.
	Allocator *Allocator
	// CacheDir holds downloaded s3:// models (default: the user cache
	// directory's perfleet/models).
	CacheDir string
	// S3 downloads s3:// models; launching one without it fails.
	S3 S3API
	// LogDir holds one "<id>.log" per server (default: a perfleet-modelserver
	// directory in the temporary directory).
	LogDir string
	// LogMaxBytes caps each log file before it rotates (DefaultLogMaxBytes).
	LogMaxBytes int64
	// LogLines is how many lines are kept in memory (DefaultLogLines).
	LogLines int
	// StopGrace is the time between SIGTERM and SIGKILL (DefaultStopGrace).
	StopGrace time.Duration
	// ProbeInterval is the health polling interval (DefaultProbeInterval).
	ProbeInterval time.Duration
	// ReadinessTimeout applies to specs without one
	// (DefaultReadinessTimeout).
	ReadinessTimeout time.Duration
	// Executable is the perfleet-agent binary that serves SIMULATOR specs
	// with its simulate subcommand (default: this process's executable).
	Executable string
	// SimulatedGPU is the simulator's --gpu type (DefaultSimulatedGPU).
	SimulatedGPU string
	// Programs overrides a framework's program, e.g. VLLM:
	// {"/opt/vllm/bin/vllm", "serve"}; the framework's arguments follow.
	Programs map[Framework][]string
	// Images overrides DefaultImages per framework (RuntimeDocker).
	Images map[Framework]string
	// Docker is the docker client binary (default "docker").
	Docker string
}

// idPattern is what a server ID may look like; it names files and
// containers.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Manager launches model servers and tracks them by ID until they are
// stopped. It is safe for concurrent use. The agent calls StopAll when it
// shuts down.
type Manager struct {
	cfg   Config
	alloc *Allocator
	cache *ModelCache

	mu      sync.Mutex
	servers map[string]*Server
	pending map[string]bool // IDs being launched
	ports   map[int]string  // port → server ID, while its process runs
	seq     int
}

// NewManager returns a Manager with cfg's defaults filled in; it creates
// the log directory.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Allocator == nil {
		cfg.Allocator = NewAllocator(cfg.GPUs)
	}
	if cfg.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		cfg.CacheDir = filepath.Join(dir, "perfleet", "models")
	}
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join(os.TempDir(), "perfleet-modelserver")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: log directory: %w", ErrInvalidSpec, err)
	}
	setDefault(&cfg.LogMaxBytes, DefaultLogMaxBytes)
	setDefault(&cfg.LogLines, DefaultLogLines)
	setDefault(&cfg.StopGrace, DefaultStopGrace)
	setDefault(&cfg.ProbeInterval, DefaultProbeInterval)
	setDefault(&cfg.ReadinessTimeout, DefaultReadinessTimeout)
	setDefault(&cfg.SimulatedGPU, DefaultSimulatedGPU)
	setDefault(&cfg.Docker, "docker")
	if cfg.Executable == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.Executable = exe
		}
	}
	return &Manager{cfg: cfg, alloc: cfg.Allocator, cache: NewModelCache(cfg.CacheDir, cfg.S3),
		servers: map[string]*Server{}, pending: map[string]bool{}, ports: map[int]string{}}, nil
}

// setDefault sets *v to def when it is zero.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Allocator returns the manager's GPU allocator.
func (m *Manager) Allocator() *Allocator { return m.alloc }

// Launch starts a model server: it reserves the ID, assigns GPUs (GPUs ×
// Copies of them) and a port, resolves the model (downloading an s3://
// model; ctx bounds this), builds the command and starts it, and returns
// once the process runs. The server is then starting; readiness is probed
// in the background (see Server.Wait). On error nothing is left running or
// held.
func (m *Manager) Launch(ctx context.Context, spec Spec) (srv *Server, err error) {
	launched := time.Now()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.ID != "" && !idPattern.MatchString(spec.ID) {
		return nil, fmt.Errorf("%w: server ID %q (letters, digits, . _ -; at most 64)", ErrInvalidSpec, spec.ID)
	}
	setDefault(&spec.HealthPath, DefaultHealthPath(spec.Framework))
	setDefault(&spec.ReadinessTimeout, m.cfg.ReadinessTimeout)
	setDefault(&spec.Runtime, RuntimeProcess)
	setDefault(&spec.Copies, 1)

	if err := m.reserve(&spec); err != nil {
		return nil, err
	}
	var release func()
	defer func() {
		if err != nil {
			if release != nil {
				release()
			}
			m.mu.Lock()
			delete(m.pending, spec.ID)
			m.mu.Unlock()
		}
	}()
	devices, err := m.alloc.Allocate(spec.ID, spec.GPUCount())
	if err != nil {
		return nil, err
	}
	release = func() {
		m.alloc.Release(spec.ID)
		m.mu.Lock()
		if m.ports[spec.Port] == spec.ID {
			delete(m.ports, spec.Port)
		}
		m.mu.Unlock()
	}
	if err := m.assignPort(&spec); err != nil {
		return nil, err
	}
	model := ""
	if spec.Model != "" {
		if model, err = m.cache.Resolve(ctx, spec.Model); err != nil {
			return nil, err
		}
	}
	inv, err := BuildInvocation(m.cfg, spec, Placement{Model: model, Port: spec.Port, Devices: devices})
	if err != nil {
		return nil, err
	}
	srv, err = m.start(spec, inv, model, devices, launched, release)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	delete(m.pending, spec.ID)
	m.servers[spec.ID] = srv
	m.mu.Unlock()
	go srv.probe(m.cfg.ProbeInterval, spec.ReadinessTimeout, m.cfg.StopGrace)
	return srv, nil
}

// reserve claims spec.ID (picking "ms-N" when empty) for a launch.
func (m *Manager) reserve(spec *Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for spec.ID == "" {
		m.seq++
		if id := "ms-" + strconv.Itoa(m.seq); m.servers[id] == nil && !m.pending[id] {
			spec.ID = id
		}
	}
	if m.servers[spec.ID] != nil || m.pending[spec.ID] {
		return fmt.Errorf("%w: %q", ErrDuplicateID, spec.ID)
	}
	m.pending[spec.ID] = true
	return nil
}

// assignPort picks a free port for port 0 and records the server's port.
func (m *Manager) assignPort(spec *Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if spec.Port == 0 {
		p, err := pickPort(m.ports)
		if err != nil {
			return err
		}
		spec.Port = p
	}
	if owner, ok := m.ports[spec.Port]; ok {
		return fmt.Errorf("%w: port %d is used by server %q", ErrInvalidSpec, spec.Port, owner)
	}
	m.ports[spec.Port] = spec.ID
	return nil
}

// start opens the log, starts the process and its lifecycle goroutine.
func (m *Manager) start(spec Spec, inv Invocation, model string, devices []int, launched time.Time, release func()) (*Server, error) {
	logPath := filepath.Join(m.cfg.LogDir, spec.ID+".log")
	logs, err := openLogSink(logPath, m.cfg.LogMaxBytes, m.cfg.LogLines)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	cmd := exec.Command(inv.Argv[0], inv.Argv[1:]...)
	cmd.Env = append(os.Environ(), inv.Env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pw, pw // one pipe keeps their order
	cmd.SysProcAttr = sysProcAttr()
	s := &Server{id: spec.ID, spec: spec, port: spec.Port, devices: devices, model: model, argv: inv.Argv,
		healthURL: fmt.Sprintf("http://127.0.0.1:%d%s", spec.Port, spec.HealthPath), launched: launched,
		cmd: cmd, logs: logs, logPath: logPath, logDone: make(chan struct{}), settled: make(chan struct{}),
		exited: make(chan struct{}), release: release, docker: m.cfg.Docker, status: StatusStarting}
	started := make(chan error, 1)
	go s.run(started, pr)
	err = <-started
	_ = pw.Close() // the child holds its own copy
	if err != nil {
		_ = pr.Close()
		_ = logs.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrStart, strings.Join(inv.Argv, " "), err)
	}
	return s, nil
}

// Get returns the server with that ID.
func (m *Manager) Get(id string) (*Server, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.servers[id]
	return s, ok
}

// List returns the tracked servers (any status), sorted by ID.
func (m *Manager) List() []*Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Server, 0, len(m.servers))
	for _, s := range m.servers {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Server) int { return strings.Compare(a.id, b.id) })
	return out
}

// Stop stops a server (SIGTERM to its process group, SIGKILL after the
// grace period or when ctx ends) and forgets it. Stopping a server that has
// already exited only forgets it.
func (m *Manager) Stop(ctx context.Context, id string) error {
	s, ok := m.Get(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownServer, id)
	}
	if err := s.stop(ctx, m.cfg.StopGrace); err != nil {
		return err
	}
	m.mu.Lock()
	if m.servers[id] == s {
		delete(m.servers, id)
	}
	m.mu.Unlock()
	return nil
}

// StopAll stops every tracked server concurrently, as Stop does, and
// returns their errors joined. Launches still in progress are not stopped:
// cancel their contexts first.
func (m *Manager) StopAll(ctx context.Context) error {
	var wg sync.WaitGroup
	servers := m.List()
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() { errs[i] = m.Stop(ctx, s.id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
