// Package server wires a coordinator node together: the gRPC API, the Raft
// node and its FSM, write forwarding to the leader, linearizable reads, the
// leader's background work and cluster formation (--bootstrap-expect/--join).
package server

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"

	"github.com/perfleet/perfleet/pkg/telemetry"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// Config is one coordinator node's settings. The same keys are accepted in a
// YAML or JSON config file (snake_case) and as flags (kebab-case).
type Config struct {
	// NodeID is the Raft server ID; generated and kept in the data dir when
	// empty.
	NodeID string `yaml:"node_id"`
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string `yaml:"data_dir"`
	// GRPCAddr is the API listen address (host:port).
	GRPCAddr string `yaml:"grpc_addr"`
	// GRPCAdvertise is the API address other nodes dial; GRPCAddr's when empty.
	GRPCAdvertise string `yaml:"grpc_advertise"`
	// GatewayAddr is the listen address (host:port) of the SageMaker-
	// compatible JSON API (coordinator/gateway); empty means none. It
	// serves HTTPS with the server certificate (callers sign with SigV4,
	// no client certificate), or plaintext HTTP with InsecureLoopback.
	GatewayAddr string `yaml:"gateway_addr"`
	// TLS: the CA that every peer's certificate must chain to, and this
	// server's certificate (server.<region>.<tls_domain>, made with
	// 'perfleet tls cert create --server') and key. The gRPC API and the
	// Raft transport require mutual TLS; the files are re-read on SIGHUP
	// and when they change.
	TLSCAFile   string `yaml:"tls_ca_file"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSMinVersion is tls12 or tls13 (the default).
	TLSMinVersion string `yaml:"tls_min_version"`
	// TLSDomain is the domain of certificate role names (default perfleet).
	TLSDomain string `yaml:"tls_domain"`
	// EncryptionKeyringFile is a local keyring file (made with 'perfleet
	// operator encryption-key create'): the Raft log and snapshots are
	// sealed with AES-256-GCM under its active data key. SIGHUP re-reads it,
	// so a rotated key takes over for new writes while old data stays
	// readable.
	EncryptionKeyringFile string `yaml:"encryption_keyring_file"`
	// EncryptionKMSKeyID instead wraps the data keys with AWS KMS
	// (GenerateDataKey, Decrypt); the wrapped keys are kept in the data dir.
	// EncryptionKMSEndpoint overrides the KMS endpoint (a KMS-compatible
	// service); credentials come from the AWS SDK's default chain.
	EncryptionKMSKeyID    string `yaml:"encryption_kms_key_id"`
	EncryptionKMSEndpoint string `yaml:"encryption_kms_endpoint"`
	// MaxRecvMsgBytes is the largest request the gRPC API accepts (default
	// 4 MiB); larger ones fail with RESOURCE_EXHAUSTED.
	MaxRecvMsgBytes int `yaml:"grpc_max_recv_msg_bytes"`
	// DefaultCallTimeout bounds unary calls that set no deadline (default
	// 60 s).
	DefaultCallTimeout time.Duration `yaml:"grpc_default_timeout"`
	// MaxConcurrentStreams caps the calls one client connection may have in
	// flight (default 1000).
	MaxConcurrentStreams uint32 `yaml:"grpc_max_concurrent_streams"`
	// RateLimit is each principal's sustained calls per second (0: no
	// limit) and RateBurst its bucket; calls over it fail with
	// RESOURCE_EXHAUSTED, reason ThrottlingException. Callers without a
	// principal (ACLs off) share their account's bucket.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// AuditRetention is how long audit records stay in the replicated state
	// for LookupEvents (default 90 days, CloudTrail's event history), and
	// AuditMaxRecords the most kept (default 1,000,000; the oldest go
	// first).
	AuditRetention  time.Duration `yaml:"audit_retention"`
	AuditMaxRecords uint64        `yaml:"audit_max_records"`
	// AuditExportDir, when set, makes the leader append every audit record
	// as a JSON line to files in this directory, rotated at
	// AuditExportMaxBytes (default 64 MiB) and, with AuditExportLocation
	// (s3://bucket/prefix or file:///dir), uploaded there once rotated.
	// Export is at least once across leader changes: deduplicate by
	// eventID.
	AuditExportDir      string `yaml:"audit_export_dir"`
	AuditExportLocation string `yaml:"audit_export_location"`
	AuditExportMaxBytes int64  `yaml:"audit_export_max_bytes"`
	// ResultsKMSKeyID makes results and audit files written to S3 use
	// SSE-KMS with this key ID or ARN; empty means SSE-S3 (AES256).
	ResultsKMSKeyID string `yaml:"results_kms_key_id"`
	// EncryptResults seals every result file jobs write (report.html, the
	// AIPerf files) with the encryption keyring, so results on disk are
	// encrypted at rest too; read them with 'perfleet operator
	// encryption-key decrypt'. Needs encryption_keyring_file or
	// encryption_kms_key_id.
	EncryptResults bool `yaml:"encrypt_results"`
	// InsecureLoopback allows plaintext listeners, only on loopback
	// addresses: for local experiments. 'perfleet dev' sets it.
	InsecureLoopback bool `yaml:"insecure_loopback"`
	// RaftAddr is the Raft transport listen address, also advertised
	// unless RaftAdvertise is set.
	RaftAddr string `yaml:"raft_addr"`
	// RaftAdvertise is the Raft address other servers dial, host:port.
	// With TLS the host may be a DNS name, which Raft records and resolves
	// on every connection: a node whose IP changes (a Kubernetes
	// StatefulSet pod) keeps its place in the cluster. Default: RaftAddr.
	RaftAdvertise string `yaml:"raft_advertise"`
	// GossipAddr is the gossip (memberlist) listen address, TCP and UDP.
	GossipAddr string `yaml:"gossip_addr"`
	// GossipKey is the base64 gossip encryption key (16, 24 or 32 bytes);
	// agents need the same key to join.
	GossipKey string `yaml:"gossip_key"`
	// BootstrapExpect is the number of servers to wait for before forming a
	// new cluster; 0 means join an existing one.
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// Join lists gRPC addresses of other servers.
	Join []string `yaml:"join"`
	// Partition and Region go into ARNs.
	Partition string `yaml:"partition"`
	Region    string `yaml:"region"`
	// DefaultAccount is the account requests run as while ACLs are off,
	// and the bootstrap administrator's unless Bootstrap names another.
	DefaultAccount string `yaml:"default_account"`
	// MaxActiveJobs limits jobs of each kind that are InProgress or Stopping
	// per account; 0 means no limit.
	MaxActiveJobs int `yaml:"max_active_jobs"`
	// PricingFile overrides and extends the built-in price catalog that
	// recommendation jobs use (on-prem $/GPU-hour, instance prices); see
	// pkg/pricing for its format.
	PricingFile string `yaml:"pricing_file"`
	// Raft timing. Tests shorten these.
	HeartbeatTimeout   time.Duration `yaml:"raft_heartbeat_timeout"`
	ElectionTimeout    time.Duration `yaml:"raft_election_timeout"`
	LeaderLeaseTimeout time.Duration `yaml:"raft_leader_lease_timeout"`
	// SnapshotThreshold is the number of log entries between snapshots.
	SnapshotThreshold uint64 `yaml:"raft_snapshot_threshold"`
	// TrailingLogs is the number of log entries kept after a snapshot.
	TrailingLogs uint64 `yaml:"raft_trailing_logs"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text (key=value lines, the default) or json (one JSON
	// object per line), for the node's and Raft's logs.
	LogFormat string `yaml:"log_format"`
	// MetricsAddr, when set, is the listen address (host:port) of a plain
	// HTTP listener serving Prometheus metrics at /metrics (see
	// pkg/telemetry and deploy/grafana); empty means no metrics.
	MetricsAddr string `yaml:"metrics_addr"`

	// FastGossip shortens gossip probe intervals (tests).
	FastGossip bool `yaml:"-"`
	// SnapshotInterval is how often Raft checks whether to snapshot
	// (default 2 minutes); tests shorten it.
	SnapshotInterval time.Duration `yaml:"-"`
	// RaftSegmentSize is the size of the Raft log's segment files (default
	// 64 MiB). The log is truncated after a snapshot only a whole segment at
	// a time, so tests shrink it to make a lagging follower need a snapshot.
	RaftSegmentSize int `yaml:"-"`
	// WrapRaftStream, when set, wraps the Raft stream layer (TCP or TLS);
	// the reliability tests inject network faults through it.
	WrapRaftStream func(raft.StreamLayer) raft.StreamLayer `yaml:"-"`

	// Logger receives the node's logs; built from LogLevel and LogFormat
	// when nil.
	Logger *slog.Logger `yaml:"-"`
	// TracerProvider traces the node's gRPC calls, Raft applies and jobs;
	// nil traces nothing. The perfleet binary builds it from the OTEL_*
	// environment (telemetry.TracingFromEnv).
	TracerProvider trace.TracerProvider `yaml:"-"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCAddr:             "127.0.0.1:7233",
		RaftAddr:             "127.0.0.1:7234",
		GossipAddr:           "127.0.0.1:7235",
		Partition:            "aws",
		Region:               "us-east-1",
		DefaultAccount:       "000000000000",
		MaxActiveJobs:        1000,
		HeartbeatTimeout:     500 * time.Millisecond,
		ElectionTimeout:      500 * time.Millisecond,
		LeaderLeaseTimeout:   250 * time.Millisecond,
		SnapshotThreshold:    8192,
		TrailingLogs:         10240,
		LogLevel:             "info",
		LogFormat:            "text",
		MaxRecvMsgBytes:      4 << 20,
		DefaultCallTimeout:   60 * time.Second,
		MaxConcurrentStreams: 1000,
		RateLimit:            0,
		RateBurst:            0,
	}
}

// LoadFile overlays a YAML or JSON config file on c. Unknown keys are an
// error that names the key.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytesReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z0-9\-]+$`)
	nodeIDRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,63}$`)
)

// Validate checks the settings and names the first bad one.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("data_dir (--data-dir) is required")
	case c.GRPCAddr == "":
		return fmt.Errorf("grpc_addr (--grpc-addr) is required")
	case c.RaftAddr == "":
		return fmt.Errorf("raft_addr (--raft-addr) is required")
	case c.NodeID != "" && !nodeIDRE.MatchString(c.NodeID):
		return fmt.Errorf("node_id (--node-id) %q must be 1-64 characters of letters, digits, '_', '.' and '-'", c.NodeID)
	case c.GossipAddr == "":
		return fmt.Errorf("gossip_addr (--gossip-addr) is required")
	case c.RaftAdvertise != "" && !validHostPort(c.RaftAdvertise):
		return fmt.Errorf("raft_advertise (--raft-advertise) %q must be host:port, e.g. perfleet-server-0.perfleet-server:7234", c.RaftAdvertise)
	case c.GatewayAddr != "" && !validHostPort(c.GatewayAddr):
		return fmt.Errorf("gateway_addr (--gateway-addr) %q must be host:port, e.g. 127.0.0.1:8443", c.GatewayAddr)
	case c.MetricsAddr != "" && !validHostPort(c.MetricsAddr):
		return fmt.Errorf("metrics_addr (--metrics-addr) %q must be host:port, e.g. 127.0.0.1:9233", c.MetricsAddr)
	case telemetry.CheckLogFormat(c.LogFormat) != nil:
		return fmt.Errorf("log_format (--log-format) %q must be text or json", c.LogFormat)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("bootstrap_expect (--bootstrap-expect) must be >= 0")
	case c.BootstrapExpect == 0 && len(c.Join) == 0:
		return fmt.Errorf("either bootstrap_expect (--bootstrap-expect) or join (--join) is needed: a new cluster or one to join")
	case !accountRE.MatchString(c.DefaultAccount):
		return fmt.Errorf("default_account (--default-account) must be 12 digits")
	case !regionRE.MatchString(c.Region):
		return fmt.Errorf("region (--region) must match [a-z0-9-]+")
	case c.Partition != "aws" && !regexp.MustCompile(`^aws-[a-z\-]+$`).MatchString(c.Partition):
		return fmt.Errorf("partition (--partition) must be aws or aws-<name>")
	case c.MaxActiveJobs < 0:
		return fmt.Errorf("max_active_jobs must be >= 0")
	case c.MaxRecvMsgBytes < 0 || (c.MaxRecvMsgBytes > 0 && c.MaxRecvMsgBytes < 64<<10):
		return fmt.Errorf("grpc_max_recv_msg_bytes must be at least 65536 (64 KiB), got %d", c.MaxRecvMsgBytes)
	case c.AuditExportLocation != "" && c.AuditExportDir == "":
		return fmt.Errorf("audit_export_location (--audit-export-location) needs audit_export_dir (--audit-export-dir), where files are kept until uploaded")
	case c.AuditRetention < 0 || c.AuditExportMaxBytes < 0:
		return fmt.Errorf("audit_retention and audit_export_max_bytes must be >= 0")
	case c.DefaultCallTimeout < 0:
		return fmt.Errorf("grpc_default_timeout must be >= 0")
	case c.RateLimit < 0 || c.RateBurst < 0:
		return fmt.Errorf("rate_limit and rate_burst (--rate-limit, --rate-burst) must be >= 0")
	}
	if c.EncryptionKeyringFile != "" && c.EncryptionKMSKeyID != "" {
		return fmt.Errorf("encryption_keyring_file (--encryption-keyring-file) and encryption_kms_key_id (--encryption-kms-key-id) exclude each other: choose one source of data keys")
	}
	if c.EncryptResults && c.EncryptionKeyringFile == "" && c.EncryptionKMSKeyID == "" {
		return fmt.Errorf("encrypt_results (--encrypt-results) needs encryption_keyring_file or encryption_kms_key_id: the results are sealed with that keyring")
	}
	if c.EncryptionKMSEndpoint != "" && c.EncryptionKMSKeyID == "" {
		return fmt.Errorf("encryption_kms_endpoint (--encryption-kms-endpoint) needs encryption_kms_key_id (--encryption-kms-key-id)")
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if _, err := DecodeGossipKey(c.GossipKey); err != nil {
		return fmt.Errorf("gossip_key (--gossip-key): %v", err)
	}
	return nil
}

// validHostPort reports whether s is host:port with a numeric port.
func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// DecodeGossipKey decodes a base64 gossip key; "" means no encryption.
func DecodeGossipKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("must be base64: %v", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("must decode to 16, 24 or 32 bytes, got %d", n)
	}
	return k, nil
}

// TLSEnabled reports whether the node serves TLS.
func (c *Config) TLSEnabled() bool {
	return c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSCAFile != ""
}

// validateTLS requires the three TLS files together, or plaintext only with
// insecure_loopback and loopback listen addresses.
func (c *Config) validateTLS() error {
	if c.TLSEnabled() {
		for _, f := range []struct{ name, flag, v string }{
			{"tls_ca_file", "--tls-ca-file", c.TLSCAFile}, {"tls_cert_file", "--tls-cert-file", c.TLSCertFile}, {"tls_key_file", "--tls-key-file", c.TLSKeyFile},
		} {
			if f.v == "" {
				return fmt.Errorf("%s (%s) is required with the other TLS files: TLS needs the CA, the server certificate and its key", f.name, f.flag)
			}
		}
		if c.InsecureLoopback {
			return fmt.Errorf("insecure_loopback (--insecure-loopback) and the TLS files exclude each other: choose one")
		}
		if _, err := tlsutil.ParseVersion(c.TLSMinVersion); err != nil {
			return fmt.Errorf("tls_min_version (--tls-min-version): %v", err)
		}
		return nil
	}
	if !c.InsecureLoopback {
		return fmt.Errorf("TLS is required: set tls_ca_file, tls_cert_file and tls_key_file (--tls-ca-file, --tls-cert-file, --tls-key-file; " +
			"make them with 'perfleet tls ca create' and 'perfleet tls cert create --server'), or pass --insecure-loopback to serve plaintext on 127.0.0.1 only")
	}
	for _, a := range []struct{ name, v string }{
		{"grpc_addr", c.GRPCAddr}, {"raft_addr", c.RaftAddr}, {"gossip_addr", c.GossipAddr}, {"gateway_addr", c.GatewayAddr}, {"grpc_advertise", c.GRPCAdvertise},
		{"metrics_addr", c.MetricsAddr}, {"raft_advertise", c.RaftAdvertise},
	} {
		if a.v != "" && !isLoopback(a.v) {
			return fmt.Errorf("%s %q is not a loopback address: insecure_loopback (--insecure-loopback) serves plaintext only on 127.0.0.1 or ::1; use TLS to listen elsewhere", a.name, a.v)
		}
	}
	return nil
}

// isLoopback reports whether host:port names a loopback host.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
