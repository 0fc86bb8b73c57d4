// Package daemon is the long-running perfleet agent: it joins the fleet's
// gossip pool with its hardware and labels, keeps a control stream to the
// coordinator leader, and samples its GPUs.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/perfleet/perfleet/agent/control"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/modelserver"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/secrets"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// Version is the agent's perfleet version.
const Version = "0.1.0"

// Whose credentials read a workload's Secrets Manager references
// (Config.SecretsCredentials, perfleet-agent --secrets-credentials).
const (
	// SecretsAsJobRole reads them as the shard's job role, through STS
	// AssumeRole with the agent's credentials.
	SecretsAsJobRole = "job-role"
	// SecretsAsAgent reads them with the agent's own credentials.
	SecretsAsAgent = "agent"
)

// Config configures an agent.
type Config struct {
	// ID is the agent's unique ID (default: the host name).
	ID string
	// GossipAddr is the gossip listen address (host:port).
	GossipAddr string
	// GossipAdvertise is the address others reach this agent at.
	GossipAdvertise string
	// Join lists gossip addresses of coordinators (or other agents).
	Join []string
	// GossipKey is the pool's encryption key, if it has one.
	GossipKey []byte
	// FastGossip shortens gossip intervals (tests).
	FastGossip bool
	// Coordinators are static coordinator gRPC addresses, used besides the
	// servers gossip reports.
	Coordinators []string
	// DialOptions are the gRPC dial options of the control stream to the
	// coordinators, transport credentials included (mutual TLS:
	// grpc.WithTransportCredentials(credentials.NewTLS(reloader.ClientConfig()))
	// with a tlsutil.Reloader of role agent). Empty dials plaintext.
	DialOptions []grpc.DialOption
	// SecretsManager resolves a workload's arn:aws:secretsmanager:...
	// references when a shard starts, with the agent's own AWS
	// credentials; nil builds one from the AWS SDK's default configuration
	// (environment, shared files, instance role) on first use. To read as
	// a job's role (SecretsCredentials) it must be a
	// *secrets.SecretsManagerResolver built from an AWS configuration (not
	// WithClient): the role's resolver keeps its region, endpoint and
	// version stage and signs with credentials from STS AssumeRole, called
	// with its credentials.
	SecretsManager secrets.Resolver
	// SecretsCredentials says whose credentials read Secrets Manager
	// references: SecretsAsJobRole (the default) those of the shard's job
	// role, from STS AssumeRole, or SecretsAsAgent the agent's own, for
	// labs whose agents cannot call STS. A shard without a role (from an
	// older coordinator) reads with the agent's own either way.
	SecretsCredentials string
	// STSEndpoint sends the AssumeRole calls for job roles to this URL
	// instead of the configuration's STS endpoint (tests; a VPC endpoint
	// can also come from AWS_ENDPOINT_URL_STS).
	STSEndpoint string
	// InstanceType and Region describe the machine.
	InstanceType, Region string
	// Labels are arbitrary key/values for placement (subnet=…, rack=…).
	Labels map[string]string
	// GPUs is the GPU backend (NVML, simulated or none).
	GPUs gpu.Backend
	// SampleInterval is the GPU sampling interval (default 1 s).
	SampleInterval time.Duration
	// Heartbeat is the control stream heartbeat (default 1 s).
	Heartbeat time.Duration
	// DataDir holds the agent's window buffers (default: a
	// perfleet-agent-data-<id> folder in the temporary directory).
	DataDir string
	// ModelServers configures the model-server manager (GPUs are filled in
	// from the inventory).
	ModelServers modelserver.Config
	// Logger receives the agent's logs.
	Logger *slog.Logger
	// MeterProvider receives the agent's load and GPU gauges (see
	// telemetry.go for the names); nil records none. perfleet-agent
	// --metrics-addr serves it at /metrics.
	MeterProvider metric.MeterProvider
	// TracerProvider traces the control stream and each shard run; nil
	// traces nothing.
	TracerProvider trace.TracerProvider
}

// Agent is a running agent.
type Agent struct {
	cfg     Config
	servers *modelServers
	shards  *shardRunner
	pool    *gossip.Pool
	control *control.Client
	sampler *gpu.Sampler
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	metrics metric.Registration // the scrape callback; nil without metrics
}

// Start starts an agent: gossip first, then the control stream and the GPU
// sampler. Joining is retried in the background until one address answers.
func Start(cfg Config) (*Agent, error) {
	if cfg.ID == "" {
		return nil, fmt.Errorf("agent ID is required")
	}
	switch cfg.SecretsCredentials {
	case "":
		cfg.SecretsCredentials = SecretsAsJobRole
	case SecretsAsJobRole, SecretsAsAgent:
	default:
		return nil, fmt.Errorf("secrets credentials %q: want %s or %s", cfg.SecretsCredentials, SecretsAsJobRole, SecretsAsAgent)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GPUs == nil {
		cfg.GPUs = gpu.NewNone("no GPU backend configured")
	}
	inv := cfg.GPUs.Inventory()
	sum := inv.Summary()
	meta := &pb.GossipMeta{Role: gossip.RoleAgent, Id: cfg.ID, Version: Version, InstanceType: cfg.InstanceType,
		Region: cfg.Region, Labels: cfg.Labels,
		Gpus: &pb.GPUSummary{Count: uint32(sum.Count), Model: sum.Model, MemoryMib: sum.MemoryMiB, Source: inv.Source}}
	pool, err := gossip.Start(gossip.Config{Name: cfg.ID, BindAddr: cfg.GossipAddr, AdvertiseAddr: cfg.GossipAdvertise,
		Key: cfg.GossipKey, Meta: meta, Fast: cfg.FastGossip, Logger: cfg.Logger, KeyringFile: keyringFile(cfg.DataDir, cfg.ID)})
	if err != nil {
		return nil, err
	}
	msCfg := cfg.ModelServers
	msCfg.GPUs = nil
	for _, d := range inv.Devices {
		msCfg.GPUs = append(msCfg.GPUs, d.Index)
	}
	manager, err := modelserver.NewManager(msCfg)
	if err != nil {
		pool.Shutdown()
		return nil, err
	}
	a := &Agent{cfg: cfg, pool: pool, servers: newModelServers(cfg.ID, manager, cfg.GPUs)}
	a.shards = newShardRunner(cfg.ID, shardDir(cfg.DataDir, cfg.ID), func() *control.Client { return a.control }, cfg.Logger)
	a.shards.secretsManager = cfg.SecretsManager
	a.shards.secretsCreds, a.shards.stsEndpoint = cfg.SecretsCredentials, cfg.STSEndpoint
	a.shards.gpuStats = a.targetGPUStats
	a.shards.tracer = telemetry.Tracer(cfg.TracerProvider)
	a.control = control.New(control.Config{AgentID: cfg.ID, Version: Version, Coordinators: a.coordinators,
		DialOptions: cfg.DialOptions, TracerProvider: cfg.TracerProvider, Heartbeat: cfg.Heartbeat, Logger: cfg.Logger, Handler: a.servers, Shards: a.shards,
		Keyring: func(kr *pb.GossipKeyring) {
			if err := pool.SetKeys(kr.GetPrimary(), kr.GetKeys()); err != nil {
				cfg.Logger.Error("gossip keyring from the leader not applied", "err", err)
			} else {
				cfg.Logger.Info("gossip keyring applied", "keys", len(kr.GetKeys()))
			}
		}})
	a.sampler, err = gpu.New(cfg.GPUs, cfg.SampleInterval, 0, cfg.Logger)
	if err != nil {
		pool.Shutdown()
		return nil, err
	}
	if cfg.MeterProvider != nil {
		if a.metrics, err = a.instrument(cfg.MeterProvider); err != nil {
			cfg.Logger.Error("agent metrics not set up", "err", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.goRun(func() { a.joinLoop(ctx) })
	a.goRun(func() { a.control.Run(ctx) })
	a.goRun(func() { a.sampler.Run(ctx) })
	cfg.Logger.Info("agent started", "id", cfg.ID, "gossip", pool.Addr(), "instance_type", cfg.InstanceType, "gpus", sum.String())
	return a, nil
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); f() }()
}

// joinLoop joins the pool through the join list, retrying until one answers.
func (a *Agent) joinLoop(ctx context.Context) {
	if len(a.cfg.Join) == 0 {
		return
	}
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		n, err := a.pool.Join(a.cfg.Join)
		if n > 0 {
			a.cfg.Logger.Info("joined the fleet", "via", a.cfg.Join)
			return
		}
		a.cfg.Logger.Warn("cannot join the fleet yet; retrying", "join", a.cfg.Join, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// coordinators returns the gRPC addresses of live servers gossip knows of,
// then the static ones.
func (a *Agent) coordinators() []string {
	var out []string
	for _, m := range a.pool.Members() {
		if m.Meta != nil && m.Meta.GetRole() == gossip.RoleServer && m.Meta.GetGrpcAddr() != "" &&
			(m.State == gossip.StateAlive || m.State == gossip.StateSuspect) {
			out = append(out, m.Meta.GetGrpcAddr())
		}
	}
	return append(out, a.cfg.Coordinators...)
}

// ID is the agent's ID.
func (a *Agent) ID() string { return a.cfg.ID }

// GossipAddr is the agent's gossip address.
func (a *Agent) GossipAddr() string { return a.pool.Addr() }

// Control is the agent's control stream client.
func (a *Agent) Control() *control.Client { return a.control }

// ModelServers is the agent's model-server manager.
func (a *Agent) ModelServers() *modelserver.Manager { return a.servers.m }

// GPUs is the agent's GPU sampler.
func (a *Agent) GPUs() *gpu.Sampler { return a.sampler }

// Stop leaves the pool gracefully (peers see "left") and stops.
func (a *Agent) Stop() error { return a.stop(true) }

// Kill stops without leaving, as a crash would (peers see "failed").
func (a *Agent) Kill() error { return a.stop(false) }

func (a *Agent) stop(leave bool) error {
	var err error
	a.once.Do(func() {
		if leave {
			a.control.Goodbye("agent stopping", 2*time.Second)
		}
		a.shards.stopAll()
		a.cancel()
		stopCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		if err := a.servers.m.StopAll(stopCtx); err != nil {
			a.cfg.Logger.Warn("stopping model servers", "err", err)
		}
		cancel()
		a.servers.wg.Wait()
		if leave {
			err = a.pool.Leave(2 * time.Second)
		} else {
			err = a.pool.Shutdown()
		}
		a.wg.Wait()
		if a.metrics != nil {
			_ = a.metrics.Unregister()
		}
		_ = a.cfg.GPUs.Close()
	})
	return err
}

// targetGPUStats is the telemetry over [from, to) of the GPUs of the model
// server on this agent that serves target (its loopback URL); nil when no
// server here serves it, so a load generator's own idle GPUs are never
// counted as the target's.
func (a *Agent) targetGPUStats(target string, from, to time.Time) []gpu.WindowStats {
	u, err := url.Parse(target)
	if err != nil || a.servers == nil || a.servers.m == nil {
		return nil
	}
	host := u.Hostname()
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return nil
	}
	var devices []int
	for _, srv := range a.servers.m.List() {
		if srv.Port() > 0 && strconv.Itoa(srv.Port()) == u.Port() {
			devices = srv.Devices()
		}
	}
	if len(devices) == 0 {
		return nil
	}
	var out []gpu.WindowStats
	for _, st := range a.sampler.Window(from, to) {
		if slices.Contains(devices, st.Index) {
			out = append(out, st)
		}
	}
	return out
}

// keyringFile is where the agent keeps its gossip keyring across restarts.
func keyringFile(base, agentID string) string {
	if base == "" {
		base = filepath.Join(os.TempDir(), "perfleet-agent-data-"+agentID)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return ""
	}
	return filepath.Join(base, "gossip-keyring.json")
}

// GossipKeys returns the agent's gossip keyring: the key in use and every
// key accepted.
func (a *Agent) GossipKeys() (primary []byte, all [][]byte) { return a.pool.Keys() }
