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

	"gopkg.in/yaml.v3"
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
	// serves plaintext HTTP until TLS arrives with the security issue.
	GatewayAddr string `yaml:"gateway_addr"`
	// RaftAddr is the Raft transport listen address, also advertised.
	RaftAddr string `yaml:"raft_addr"`
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
	// DefaultAccount is the account requests run as until ACLs exist.
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

	// FastGossip shortens gossip probe intervals (tests).
	FastGossip bool `yaml:"-"`

	// Logger receives the node's logs; built from LogLevel when nil.
	Logger *slog.Logger `yaml:"-"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		GRPCAddr:           "127.0.0.1:7233",
		RaftAddr:           "127.0.0.1:7234",
		GossipAddr:         "127.0.0.1:7235",
		Partition:          "aws",
		Region:             "us-east-1",
		DefaultAccount:     "000000000000",
		MaxActiveJobs:      1000,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		LogLevel:           "info",
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
	case c.GatewayAddr != "" && !validHostPort(c.GatewayAddr):
		return fmt.Errorf("gateway_addr (--gateway-addr) %q must be host:port, e.g. 127.0.0.1:8443", c.GatewayAddr)
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
