package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"gopkg.in/yaml.v3"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/pkg/telemetry"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// agentFlags are the flags of the agent daemon (perfleet-agent with no
// subcommand).
type agentFlags struct {
	id, gossipAddr, gossipAdvertise, join, coordinators string
	gossipKey, gossipKeyFile                            string
	instanceType, region, simulateGPUs, logLevel        string
	logFormat, metricsAddr                              string
	dataDir, configFile                                 string
	secretsCreds                                        string
	labels                                              []string
	sampleInterval                                      time.Duration

	// Mutual TLS to the coordinators (see agent_tls.go).
	caFile, certFile, keyFile, tlsMinVersion, tlsDomain string
	insecure                                            bool
}

func init() {
	f := &agentFlags{}
	rootCmd.Long = `perfleet-agent runs on each GPU machine of a perfleet fleet.

With no subcommand it runs the agent daemon: it joins the fleet's gossip pool
through --join (gossip addresses of coordinators), gossips its hardware and
labels, keeps a control stream to the coordinator leader and samples its GPUs
through NVML (or a simulated inventory with --simulate-gpus). Stop it with
Ctrl-C: it says goodbye and leaves the pool, so the fleet records it as left.

The control stream uses mutual TLS: give the cluster CA (--ca-file) and an
agent certificate with its key (--cert-file, --key-file), made with
'perfleet tls cert create --agent --region <region>', and the coordinators'
--region. The agent checks that the coordinator's certificate is
server.<region>.<domain> and presents agent.<region>.<domain>. The files are
re-read when they change and on SIGHUP; connections made later use the new
certificate. Without TLS files the agent talks plaintext only to loopback
coordinators (127.0.0.1, ::1, localhost); --insecure allows plaintext to any
address.

Observability: --metrics-addr serves Prometheus metrics at
http://<addr>/metrics on a plain HTTP listener (live load: shards running,
requests in flight, achieved and target request rate, schedule lag, request
counters; NVML GPU gauges per GPU: utilisation, memory, power, temperature;
perfleet_agent_* and perfleet_gpu_* series, agent label). Logs are
structured, text or JSON (--log-format), and shard lines carry job, level,
shard and run IDs. Traces of the control stream and of each shard run go to
an OTLP/gRPC collector when OTEL_TRACES_EXPORTER=otlp or
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
tracing is off otherwise.

Secrets: a workload's AWS Secrets Manager references (secrets: {hf_token:
arn:aws:secretsmanager:...}) are read on the agent as the job's role: the
agent calls STS AssumeRole on the job's role_arn with its own AWS credentials
(environment, shared files or instance role), as session
perfleet-<agent id>-<run id> for 15 minutes, and reads the secrets with the
role's credentials, which it reuses until they expire. The role must trust
the agent's identity. --secrets-credentials agent reads them with the
agent's own credentials instead, for labs whose agents cannot call STS.

The subcommands also work standalone: 'run' benchmarks a server like
'aiperf profile', 'simulate' serves the built-in simulated LLM server.`
	rootCmd.Example = `  # a GPU machine of a fleet with TLS
  perfleet-agent --join 10.0.0.1:7235 --region us-east-1 --instance-type lab-8xH100 --label rack=r1 \
    --ca-file perfleet-ca.pem \
    --cert-file us-east-1-agent-perfleet-0.pem --key-file us-east-1-agent-perfleet-0-key.pem

  # a local experiment: plaintext to a coordinator on loopback, simulated GPUs
  perfleet-agent --join 127.0.0.1:7235 --simulate-gpus 8xH100-80GB --instance-type lab-8xH100`
	rootCmd.Args = cobra.NoArgs
	rootCmd.RunE = func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, f) }
	f.register(rootCmd)
}

// register defines the agent daemon's flags on cmd, bound to f.
func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	host, _ := os.Hostname()
	fl.StringVar(&f.id, "id", host, "agent ID, unique in the fleet")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:7946", "gossip listen address (TCP and UDP)")
	fl.StringVar(&f.gossipAdvertise, "gossip-advertise", "", "gossip address others reach this agent at (default: --gossip-addr)")
	fl.StringVar(&f.join, "join", "", "gossip addresses of coordinators, comma-separated (required)")
	fl.StringVar(&f.coordinators, "coordinator", "", "coordinator gRPC addresses to use besides those gossip reports, comma-separated")
	fl.StringVar(&f.gossipKey, "gossip-key", "", "base64 gossip encryption key (16, 24 or 32 bytes), the coordinators' key")
	fl.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file holding the base64 gossip key")
	fl.StringVar(&f.instanceType, "instance-type", "", "instance type or on-prem class (e.g. lab-8xH100); 'imds' reads it from EC2 instance metadata")
	fl.StringVar(&f.region, "region", "", "region of this machine and its coordinators, whose TLS certificates are server.<region>.<domain> (default: from instance metadata with --instance-type imds)")
	fl.StringArrayVar(&f.labels, "label", nil, "label as key=value for placement, e.g. subnet=s-1 (repeatable)")
	fl.StringVar(&f.simulateGPUs, "simulate-gpus", "", "simulated GPU inventory instead of NVML, e.g. 8xH100-80GB or 1xL4")
	fl.DurationVar(&f.sampleInterval, "sample-interval", time.Second, "GPU sampling interval (at least 100ms)")
	fl.StringVar(&f.configFile, "config", "", "YAML or JSON file with the same settings, snake_case (id, gossip_addr, join, instance_type, labels, secrets_credentials, …); flags win")
	fl.StringVar(&f.dataDir, "data-dir", "", "folder for window buffers (default: perfleet-agent-data-<id> in the temporary directory)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text (key=value lines) or json (one JSON object per line)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://<addr>/metrics, e.g. 0.0.0.0:9234 (default: off)")
	fl.StringVar(&f.secretsCreds, "secrets-credentials", daemon.SecretsAsJobRole, "whose AWS credentials read a job's Secrets Manager references: "+
		"job-role (the job's role_arn, through STS AssumeRole with the agent's credentials) or agent (the agent's own, for agents that cannot call STS)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate the coordinators' certificates chain to (mutual TLS, with --cert-file and --key-file)")
	fl.StringVar(&f.certFile, "cert-file", "", "PEM agent certificate, agent.<region>.<domain> (perfleet tls cert create --agent)")
	fl.StringVar(&f.keyFile, "key-file", "", "PEM private key of --cert-file")
	fl.StringVar(&f.tlsMinVersion, "tls-min-version", "tls13", "minimum TLS version: tls12 or tls13")
	fl.StringVar(&f.tlsDomain, "tls-domain", tlsutil.DefaultDomain, "domain of certificate role names (<role>.<region>.<domain>)")
	fl.BoolVar(&f.insecure, "insecure", false, "talk plaintext to coordinators that are not on loopback (no TLS files)")
}

// agentFile is the agent's config file: the flags' settings in snake_case.
type agentFile struct {
	ID              string            `yaml:"id"`
	GossipAddr      string            `yaml:"gossip_addr"`
	GossipAdvertise string            `yaml:"gossip_advertise"`
	Join            []string          `yaml:"join"`
	Coordinators    []string          `yaml:"coordinators"`
	GossipKey       string            `yaml:"gossip_key"`
	GossipKeyFile   string            `yaml:"gossip_key_file"`
	InstanceType    string            `yaml:"instance_type"`
	Region          string            `yaml:"region"`
	Labels          map[string]string `yaml:"labels"`
	SimulateGPUs    string            `yaml:"simulate_gpus"`
	SampleInterval  time.Duration     `yaml:"sample_interval"`
	DataDir         string            `yaml:"data_dir"`
	LogLevel        string            `yaml:"log_level"`
	LogFormat       string            `yaml:"log_format"`
	MetricsAddr     string            `yaml:"metrics_addr"`
	SecretsCreds    string            `yaml:"secrets_credentials"`
	CAFile          string            `yaml:"ca_file"`
	CertFile        string            `yaml:"cert_file"`
	KeyFile         string            `yaml:"key_file"`
	TLSMinVersion   string            `yaml:"tls_min_version"`
	TLSDomain       string            `yaml:"tls_domain"`
	Insecure        bool              `yaml:"insecure"`
}

// loadAgentFile applies a config file's settings to the flags the command
// line did not set.
func loadAgentFile(cmd *cobra.Command, f *agentFlags) error {
	b, err := os.ReadFile(f.configFile)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	var c agentFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("--config %s: %v", f.configFile, err)
	}
	set := func(flag string, apply func()) {
		if !cmd.Flags().Changed(flag) {
			apply()
		}
	}
	str := func(flag string, dst *string, v string) {
		if v != "" {
			set(flag, func() { *dst = v })
		}
	}
	str("id", &f.id, c.ID)
	str("gossip-addr", &f.gossipAddr, c.GossipAddr)
	str("gossip-advertise", &f.gossipAdvertise, c.GossipAdvertise)
	str("join", &f.join, strings.Join(c.Join, ","))
	str("coordinator", &f.coordinators, strings.Join(c.Coordinators, ","))
	str("gossip-key", &f.gossipKey, c.GossipKey)
	str("gossip-key-file", &f.gossipKeyFile, c.GossipKeyFile)
	str("instance-type", &f.instanceType, c.InstanceType)
	str("region", &f.region, c.Region)
	str("simulate-gpus", &f.simulateGPUs, c.SimulateGPUs)
	str("data-dir", &f.dataDir, c.DataDir)
	str("log-level", &f.logLevel, c.LogLevel)
	str("log-format", &f.logFormat, c.LogFormat)
	str("metrics-addr", &f.metricsAddr, c.MetricsAddr)
	str("secrets-credentials", &f.secretsCreds, c.SecretsCreds)
	str("ca-file", &f.caFile, c.CAFile)
	str("cert-file", &f.certFile, c.CertFile)
	str("key-file", &f.keyFile, c.KeyFile)
	str("tls-min-version", &f.tlsMinVersion, c.TLSMinVersion)
	str("tls-domain", &f.tlsDomain, c.TLSDomain)
	if c.Insecure {
		set("insecure", func() { f.insecure = true })
	}
	if c.SampleInterval > 0 {
		set("sample-interval", func() { f.sampleInterval = c.SampleInterval })
	}
	for k, v := range c.Labels {
		f.labels = append(f.labels, k+"="+v) // flags given too add to these
	}
	return nil
}

func runAgent(cmd *cobra.Command, f *agentFlags) error {
	if f.configFile != "" {
		if err := loadAgentFile(cmd, f); err != nil {
			return err
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	logger, err := telemetry.NewLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
	if err != nil {
		return fmt.Errorf("--log-format: %v", err)
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %q must be host:port, e.g. 0.0.0.0:9234", f.metricsAddr)
		}
	}
	if f.secretsCreds != daemon.SecretsAsJobRole && f.secretsCreds != daemon.SecretsAsAgent {
		return fmt.Errorf("--secrets-credentials %q: want %s or %s", f.secretsCreds, daemon.SecretsAsJobRole, daemon.SecretsAsAgent)
	}
	if f.join == "" {
		return fmt.Errorf("--join is required: the gossip address of at least one coordinator (its --gossip-addr)")
	}
	key, err := gossipKey(f)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q must be key=value", l)
		}
		labels[k] = v
	}
	// TLS flags are checked before anything slow (instance metadata, NVML).
	if err := f.checkTransport(); err != nil {
		return err
	}
	instanceType, region := f.instanceType, f.region
	if instanceType == "imds" {
		it, r, err := daemon.FromIMDS(context.Background(), "", 2*time.Second)
		if err != nil {
			return err
		}
		instanceType = it
		if region == "" {
			region = r
		}
	}
	tr, err := f.transport(region, logger)
	if err != nil {
		return err
	}
	// Signals are caught from here on, so that a SIGHUP never stops the
	// agent, even before the certificate reloader listens for it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	ctx, cancel := context.WithCancel(context.Background())
	var reloads sync.WaitGroup
	defer func() { cancel(); reloads.Wait() }()
	if tr.reloader != nil {
		// Run reloads when the files change and on SIGHUP, logging the
		// outcome: a rejected set of files leaves the current certificate in
		// use. New connections take the new certificate; streams that are up
		// keep their session.
		reloads.Go(func() { tr.reloader.Run(ctx) })
	}
	// Tracing as the OTEL_* environment asks (off by default); this is the
	// binary's own path, so the provider is installed globally too.
	tracing, err := telemetry.TracingFromEnv(ctx, "perfleet-agent")
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = tracing.Shutdown(sctx)
		scancel()
	}()
	if tracing.Enabled {
		otel.SetTracerProvider(tracing.Provider)
		otel.SetTextMapPropagator(telemetry.Propagator)
	}
	var meters metric.MeterProvider
	var metricsDesc string
	if f.metricsAddr != "" {
		m, err := telemetry.NewMetrics("perfleet-agent")
		if err != nil {
			return err
		}
		ms, err := telemetry.ServeMetrics(f.metricsAddr, m)
		if err != nil {
			return err
		}
		defer ms.Close()
		meters, metricsDesc = m.MeterProvider(), fmt.Sprintf("metrics on http://%s/metrics\n", ms.Addr())
	}
	var backend gpu.Backend
	if f.simulateGPUs != "" {
		spec, err := gpu.ParseSimulated(f.simulateGPUs)
		if err != nil {
			return fmt.Errorf("--simulate-gpus: %v", err)
		}
		backend = gpu.NewSimulated(spec, gpu.SimOptions{Seed: f.id})
	} else {
		backend = gpu.Open(logger)
	}
	a, err := daemon.Start(daemon.Config{ID: f.id, GossipAddr: f.gossipAddr, GossipAdvertise: f.gossipAdvertise,
		Join: splitComma(f.join), GossipKey: key, Coordinators: splitComma(f.coordinators), InstanceType: instanceType,
		Region: region, Labels: labels, GPUs: backend, SampleInterval: f.sampleInterval, DataDir: f.dataDir, Logger: logger,
		DialOptions: tr.dialOptions, MeterProvider: meters, TracerProvider: tracing.Provider, SecretsCredentials: f.secretsCreds})
	if err != nil {
		return err
	}
	inv := backend.Inventory()
	fmt.Fprintf(cmd.OutOrStdout(), "perfleet-agent %s: gossip on %s, instance type %q, GPUs %s (%s)\ncontrol stream: %s\n%sready\n",
		a.ID(), a.GossipAddr(), instanceType, inv.Summary().String(), inv.Source, tr.desc, metricsDesc)
	done := cmd.Context()
	if done == nil {
		done = context.Background()
	}
wait:
	for {
		select {
		case <-done.Done():
			break wait
		case s := <-sig:
			if s != syscall.SIGHUP {
				break wait
			}
			if tr.reloader == nil {
				logger.Info("SIGHUP: no TLS certificates to reload; the agent talks plaintext")
			} // else the reloader reloads the files and logs the outcome
		}
	}
	fmt.Fprintln(cmd.OutOrStdout(), "leaving the fleet")
	return a.Stop()
}

func gossipKey(f *agentFlags) ([]byte, error) {
	s := f.gossipKey
	if f.gossipKeyFile != "" {
		b, err := os.ReadFile(f.gossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key-file: %v", err)
		}
		s = strings.TrimSpace(string(b))
	}
	if s == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
		return nil, fmt.Errorf("the gossip key must be base64 of 16, 24 or 32 bytes")
	}
	return k, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
