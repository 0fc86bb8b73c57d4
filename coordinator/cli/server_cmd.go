package cli

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfleet/perfleet/coordinator/server"
)

func newServerCmd(g *globals) *cobra.Command {
	cfg := server.DefaultConfig()
	var configFile, join, keyFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a coordinator node of a perfleet cluster",
		Long: `Run one node of the Raft-replicated coordinator cluster.

Start three nodes with the same --bootstrap-expect 3 and a --join list that
names at least one other node; they find each other and form one cluster.
A node restarted with its --data-dir rejoins with its state. To add a node to
a running cluster, give --join and no --bootstrap-expect.

Agents join the fleet through a coordinator's --gossip-addr
(perfleet-agent --join); with --gossip-key the pool is encrypted and agents
need the same key.

Every listener uses TLS: the gRPC API and the Raft transport require mutual
TLS with certificates from one CA ('perfleet tls ca create', 'perfleet tls
cert create --server|--agent|--client'); the certificate files are re-read on
SIGHUP and when they change, without dropping connections. Plaintext is only
for local experiments: --insecure-loopback, with every address on 127.0.0.1.

Until 'perfleet acl bootstrap' runs, every call is allowed and runs as
--default-account; after it, calls need a token (or a client certificate that
names a principal, or a SigV4 access key on the gateway) and a policy that
allows them, and every call is written to the audit log.

With --gateway-addr the node also serves SageMaker's JSON API (the 14 AI
workload config, benchmark job and recommendation job operations), so the
AWS SDKs and CLI work by changing only the endpoint URL. Requests are
SigV4-signed with an access key ('perfleet acl access-key create'); until
ACLs are enabled the access key ID "test" with secret "test" is accepted (as
LocalStack does), in the configured --region:
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    aws sagemaker list-ai-benchmark-jobs --endpoint-url https://127.0.0.1:8443

With --encryption-keyring-file (or --encryption-kms-key-id) the Raft log and
snapshots are encrypted with AES-256-GCM. 'perfleet operator encryption-key
rotate --file F' adds a new active key; SIGHUP makes the node use it for new
writes, and data sealed with older keys stays readable.

Observability: with --metrics-addr the node serves Prometheus metrics at
http://<metrics-addr>/metrics on a plain HTTP listener of its own (Raft,
API calls, jobs, agents, window merges: perfleet_* series; a Grafana
dashboard is in deploy/grafana/perfleet.json). Logs are structured: text
(key=value) or JSON lines with --log-format json. Traces (gRPC calls, Raft
applies, each job's plan, levels, shards and results) are exported with
OTLP over gRPC when the standard OpenTelemetry variables ask for it:
OTEL_TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, e.g.
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 OTEL_EXPORTER_OTLP_INSECURE=true
Tracing is off otherwise.

Settings may also come from --config FILE (YAML or JSON, snake_case keys such
as node_id, data_dir, grpc_addr, gateway_addr, raft_addr, gossip_addr,
gossip_key, bootstrap_expect, join, metrics_addr, log_level, log_format);
flags given on the command line win over the file.

Example:
  perfleet server --node-id n1 --data-dir /var/lib/perfleet \
    --grpc-addr 10.0.0.1:7233 --raft-addr 10.0.0.1:7234 \
    --tls-ca-file perfleet-ca.pem --tls-cert-file us-east-1-server-perfleet-0.pem \
    --tls-key-file us-east-1-server-perfleet-0-key.pem \
    --bootstrap-expect 3 --join 10.0.0.2:7233,10.0.0.3:7233

  # local, plaintext:
  perfleet server --insecure-loopback --data-dir /tmp/p1 --bootstrap-expect 1`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				fileCfg := server.DefaultConfig()
				if err := fileCfg.LoadFile(configFile); err != nil {
					return usageError{err}
				}
				overlayFlags(cmd, &fileCfg, &cfg)
				cfg = fileCfg
			}
			if join != "" {
				cfg.Join = splitList(join)
			}
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return usageError{fmt.Errorf("--gossip-key-file: %v", err)}
				}
				cfg.GossipKey = strings.TrimSpace(string(b))
			}
			if cfg.BootstrapExpect == 0 && len(cfg.Join) == 0 {
				return usageError{fmt.Errorf("give --bootstrap-expect N to form a new cluster (1 for a single node), or --join to join one")}
			}
			return runServer(g, cfg, "")
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML or JSON config file")
	f.StringVar(&cfg.NodeID, "node-id", "", "Raft server ID (default: generated once and kept in the data dir)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log and snapshots (required)")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "gRPC API listen address")
	f.StringVar(&cfg.GRPCAdvertise, "grpc-advertise", "", "gRPC address other nodes dial (default: --grpc-addr)")
	f.StringVar(&cfg.GatewayAddr, "gateway-addr", "", "SageMaker-compatible JSON API (AWS SDK/CLI) listen address, e.g. 127.0.0.1:8443 (default: none)")
	f.StringVar(&cfg.PricingFile, "pricing-file", "", "YAML price overrides for recommendation jobs (gpu_hour_usd, instances); default: the built-in catalog")
	f.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "Raft transport listen address, also advertised unless --raft-advertise is given")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address other servers dial; with TLS may be a DNS name that outlives IP changes, e.g. a StatefulSet pod's (default: --raft-addr)")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip (memberlist) address agents join, TCP and UDP")
	f.StringVar(&cfg.GossipKey, "gossip-key", "", "base64 gossip encryption key (16, 24 or 32 bytes); agents need the same key")
	f.StringVar(&keyFile, "gossip-key-file", "", "file holding the base64 gossip key (instead of --gossip-key)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many servers know each other")
	f.StringVar(&join, "join", "", "gRPC addresses of other servers, comma-separated")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region used in ARNs")
	f.StringVar(&cfg.Partition, "partition", cfg.Partition, "partition used in ARNs")
	f.StringVar(&cfg.DefaultAccount, "default-account", cfg.DefaultAccount, "12-digit account requests run as until ACLs are enabled")
	f.IntVar(&cfg.MaxActiveJobs, "max-active-jobs", cfg.MaxActiveJobs, "active jobs of each kind an account may have (0: no limit)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text (key=value lines) or json (one JSON object per line)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://<addr>/metrics, e.g. 127.0.0.1:9233 (default: off)")
	f.StringVar(&cfg.TLSCAFile, "tls-ca-file", "", "PEM CA certificate every peer must chain to")
	f.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "PEM server certificate (server.<region>.<domain>)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "PEM key of --tls-cert-file")
	f.StringVar(&cfg.TLSMinVersion, "tls-min-version", "tls13", "minimum TLS version: tls12 or tls13")
	f.StringVar(&cfg.TLSDomain, "tls-domain", "", "domain of certificate role names (default perfleet)")
	f.BoolVar(&cfg.InsecureLoopback, "insecure-loopback", false, "serve plaintext, only on loopback addresses (local experiments)")
	f.Float64Var(&cfg.RateLimit, "rate-limit", 0, "calls per second each principal may make (0: no limit); over it: RESOURCE_EXHAUSTED ThrottlingException")
	f.IntVar(&cfg.RateBurst, "rate-burst", 0, "bucket size of --rate-limit (default 1)")
	f.StringVar(&cfg.AuditExportDir, "audit-export-dir", "", "append every audit record as JSON lines to rotated files here (while leading)")
	f.StringVar(&cfg.AuditExportLocation, "audit-export-location", "", "upload rotated audit files to s3://bucket/prefix or file:///dir")
	f.DurationVar(&cfg.AuditRetention, "audit-retention", cfg.AuditRetention, "how long LookupEvents keeps audit records")
	f.BoolVar(&cfg.EncryptResults, "encrypt-results", false, "also encrypt the result files jobs write, with the encryption keyring (read them with 'perfleet operator encryption-key decrypt')")
	f.StringVar(&cfg.ResultsKMSKeyID, "results-kms-key-id", "", "SSE-KMS key for results and audit files written to S3 (default SSE-S3)")
	f.StringVar(&cfg.EncryptionKeyringFile, "encryption-keyring-file", "", "encrypt the Raft log and snapshots with this keyring (perfleet operator encryption-key create)")
	f.StringVar(&cfg.EncryptionKMSKeyID, "encryption-kms-key-id", "", "encrypt the Raft log and snapshots with data keys from this AWS KMS key")
	f.StringVar(&cfg.EncryptionKMSEndpoint, "encryption-kms-endpoint", "", "KMS endpoint URL (a KMS-compatible service; default AWS)")
	return cmd
}

// overlayFlags copies the flags set on the command line over the file's
// values.
func overlayFlags(cmd *cobra.Command, dst, flags *server.Config) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("node-id", func() { dst.NodeID = flags.NodeID })
	set("data-dir", func() { dst.DataDir = flags.DataDir })
	set("grpc-addr", func() { dst.GRPCAddr = flags.GRPCAddr })
	set("grpc-advertise", func() { dst.GRPCAdvertise = flags.GRPCAdvertise })
	set("gateway-addr", func() { dst.GatewayAddr = flags.GatewayAddr })
	set("pricing-file", func() { dst.PricingFile = flags.PricingFile })
	set("raft-addr", func() { dst.RaftAddr = flags.RaftAddr })
	set("raft-advertise", func() { dst.RaftAdvertise = flags.RaftAdvertise })
	set("gossip-addr", func() { dst.GossipAddr = flags.GossipAddr })
	set("gossip-key", func() { dst.GossipKey = flags.GossipKey })
	set("bootstrap-expect", func() { dst.BootstrapExpect = flags.BootstrapExpect })
	set("region", func() { dst.Region = flags.Region })
	set("partition", func() { dst.Partition = flags.Partition })
	set("default-account", func() { dst.DefaultAccount = flags.DefaultAccount })
	set("max-active-jobs", func() { dst.MaxActiveJobs = flags.MaxActiveJobs })
	set("log-level", func() { dst.LogLevel = flags.LogLevel })
	set("log-format", func() { dst.LogFormat = flags.LogFormat })
	set("metrics-addr", func() { dst.MetricsAddr = flags.MetricsAddr })
	set("tls-ca-file", func() { dst.TLSCAFile = flags.TLSCAFile })
	set("tls-cert-file", func() { dst.TLSCertFile = flags.TLSCertFile })
	set("tls-key-file", func() { dst.TLSKeyFile = flags.TLSKeyFile })
	set("tls-min-version", func() { dst.TLSMinVersion = flags.TLSMinVersion })
	set("tls-domain", func() { dst.TLSDomain = flags.TLSDomain })
	set("insecure-loopback", func() { dst.InsecureLoopback = flags.InsecureLoopback })
	set("audit-export-dir", func() { dst.AuditExportDir = flags.AuditExportDir })
	set("audit-export-location", func() { dst.AuditExportLocation = flags.AuditExportLocation })
	set("audit-retention", func() { dst.AuditRetention = flags.AuditRetention })
	set("encrypt-results", func() { dst.EncryptResults = flags.EncryptResults })
	set("results-kms-key-id", func() { dst.ResultsKMSKeyID = flags.ResultsKMSKeyID })
	set("rate-limit", func() { dst.RateLimit = flags.RateLimit })
	set("rate-burst", func() { dst.RateBurst = flags.RateBurst })
	set("encryption-keyring-file", func() { dst.EncryptionKeyringFile = flags.EncryptionKeyringFile })
	set("encryption-kms-key-id", func() { dst.EncryptionKMSKeyID = flags.EncryptionKMSKeyID })
	set("encryption-kms-endpoint", func() { dst.EncryptionKMSEndpoint = flags.EncryptionKMSEndpoint })
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newDevCmd(g *globals) *cobra.Command {
	cfg := server.DefaultConfig()
	var agents int
	var simGPUs, agentType string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-process development cluster",
		Long: `Run a one-node coordinator in this process, with its data in a temporary
directory (unless --data-dir is given) that is removed on exit. It prints the
API address and one line saying it is ready. Stop it with Ctrl-C. It serves
plaintext on loopback addresses only; use 'perfleet server' with TLS for
anything else.

With --agents N it also runs N agents with simulated GPUs in this process,
so one command gives a whole fleet; their SIMULATOR model servers need
perfleet-agent beside perfleet or on PATH:
  perfleet dev --agents 3 --simulate-gpus 8xH100-80GB --instance-type lab-8xH100

With --gateway-addr it also serves SageMaker's JSON API in plaintext, for the
stock AWS SDKs and CLI with access key ID "test" and secret "test":
  perfleet dev --gateway-addr 127.0.0.1:8443
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    aws sagemaker list-ai-workload-configs --endpoint-url http://127.0.0.1:8443

With --metrics-addr it serves Prometheus metrics at http://<addr>/metrics:
the coordinator's series and those of its --agents agents (agent label).
Traces go to an OTLP/gRPC collector when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_TRACES_EXPORTER=otlp) is set; see 'perfleet server --help'.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cleanup := ""
			if cfg.DataDir == "" {
				dir, err := os.MkdirTemp("", "perfleet-dev-")
				if err != nil {
					return err
				}
				cfg.DataDir, cleanup = dir, dir
			}
			cfg.NodeID = "dev"
			cfg.BootstrapExpect = 1
			cfg.InsecureLoopback = true // dev is plaintext and loopback-only
			cfg.RaftAddr = "127.0.0.1:0"
			if agents < 0 || agents > 64 {
				return usageError{fmt.Errorf("--agents must be 0-64, got %d", agents)}
			}
			var fleet func(s *server.Server) (func(), error)
			if agents > 0 {
				fleet = func(s *server.Server) (func(), error) {
					d, err := startDevAgents(agents, simGPUs, agentType, s, filepath.Join(cfg.DataDir, "agents"), g.out)
					if err != nil {
						return nil, err
					}
					return d.stop, nil
				}
			}
			return runServerWith(g, cfg, cleanup, fleet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "gRPC API listen address")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip address agents join (perfleet-agent --join)")
	f.StringVar(&cfg.GatewayAddr, "gateway-addr", "", "SageMaker-compatible JSON API (AWS SDK/CLI) listen address, e.g. 127.0.0.1:8443 (default: none)")
	f.StringVar(&cfg.PricingFile, "pricing-file", "", "YAML price overrides for recommendation jobs (gpu_hour_usd, instances); default: the built-in catalog")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep data here instead of a temporary directory")
	f.StringVar(&cfg.LogLevel, "log-level", "warn", "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text (key=value lines) or json (one JSON object per line)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://<addr>/metrics, e.g. 127.0.0.1:9233 (default: off)")
	f.IntVar(&agents, "agents", 0, "also run this many agents with simulated GPUs in this process")
	f.StringVar(&simGPUs, "simulate-gpus", "8xH100-80GB", "the simulated GPUs of each --agents agent, COUNTxMODEL")
	f.StringVar(&agentType, "instance-type", "", "the instance type the --agents agents report (default lab-<COUNTxMODEL>)")
	return cmd
}

// runServer runs a node until SIGINT or SIGTERM.
func runServer(g *globals, cfg server.Config, cleanup string) error {
	return runServerWith(g, cfg, cleanup, nil)
}

// runServerWith runs a node, and what fleet starts beside it (dev mode's
// agents; stopped before the node), until SIGINT or SIGTERM.
func runServerWith(g *globals, cfg server.Config, cleanup string, fleet func(s *server.Server) (func(), error)) error {
	if cleanup != "" {
		defer os.RemoveAll(cleanup)
	}
	tp, err := g.tracing.provider()
	if err != nil {
		return err
	}
	cfg.TracerProvider = tp
	s, err := server.New(cfg)
	if err != nil {
		return usageError{err}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := s.ReloadTLS(); err != nil {
				fmt.Fprintf(g.errOut, "SIGHUP: certificates not reloaded, the old ones stay in use: %v\n", err)
			} else {
				fmt.Fprintln(g.out, "SIGHUP: certificates reloaded")
			}
			if err := s.ReloadKeyring(); err != nil {
				fmt.Fprintf(g.errOut, "SIGHUP: encryption keyring not reloaded, the old one stays in use: %v\n", err)
			}
		}
	}()
	if cleanup != "" || cfg.BootstrapExpect == 1 {
		s.WaitReady(10 * time.Second)
	}
	fmt.Fprintf(g.out, "perfleet coordinator %s: API on %s, raft on %s, gossip on %s, data in %s\n", s.NodeID(), s.Addr(), s.RaftAddr(), s.GossipAddr(), cfg.DataDir)
	if gw := s.GatewayAddr(); gw != "" {
		scheme := "http"
		if cfg.TLSEnabled() {
			scheme = "https"
		}
		fmt.Fprintf(g.out, "SageMaker API on %s://%s (region %s; access key test, secret test until ACLs are bootstrapped): aws sagemaker ... --endpoint-url %s://%s\n", scheme, gw, cfg.Region, scheme, gw)
	}
	if m := s.MetricsAddr(); m != "" {
		fmt.Fprintf(g.out, "metrics on http://%s/metrics\n", m)
	}
	stopFleet := func() {}
	if fleet != nil {
		stop, err := fleet(s)
		if err != nil {
			_ = s.Shutdown()
			return err
		}
		stopFleet = stop
	}
	fmt.Fprintf(g.out, "ready: export PERFLEET_ADDR=%s\n", s.Addr())
	<-sig
	fmt.Fprintln(g.out, "shutting down")
	stopFleet()
	return s.Shutdown()
}
