package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileYAMLAndJSON(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "c.yaml")
	os.WriteFile(yml, []byte("node_id: n1\ndata_dir: /var/lib/perfleet\nbootstrap_expect: 3\njoin: [a:7233, b:7233]\nraft_heartbeat_timeout: 1s\n"+
		"metrics_addr: 0.0.0.0:9233\nlog_format: json\n"), 0o600)
	c := DefaultConfig()
	if err := c.LoadFile(yml); err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "n1" || c.BootstrapExpect != 3 || len(c.Join) != 2 || c.HeartbeatTimeout != time.Second || c.Region != "us-east-1" ||
		c.MetricsAddr != "0.0.0.0:9233" || c.LogFormat != "json" {
		t.Fatalf("unexpected config %+v", c)
	}
	js := filepath.Join(dir, "c.json")
	os.WriteFile(js, []byte(`{"node_id":"n2","data_dir":"/d","join":["x:1"]}`), 0o600)
	c = DefaultConfig()
	if err := c.LoadFile(js); err != nil || c.NodeID != "n2" || c.Join[0] != "x:1" {
		t.Fatalf("json: %v %+v", err, c)
	}
}

func TestLoadFileRejectsUnknownKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("node_id: n1\nbootstrap_expct: 3\n"), 0o600)
	c := DefaultConfig()
	err := c.LoadFile(p)
	if err == nil || !strings.Contains(err.Error(), "bootstrap_expct") {
		t.Fatalf("want an error naming bootstrap_expct, got %v", err)
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	cases := map[string]func(*Config){
		"data_dir":         func(c *Config) { c.DataDir = "" },
		"bootstrap_expect": func(c *Config) { c.BootstrapExpect = -1 },
		"join":             func(c *Config) { c.BootstrapExpect, c.Join = 0, nil },
		"default_account":  func(c *Config) { c.DefaultAccount = "123" },
		"region":           func(c *Config) { c.Region = "US East" },
		"partition":        func(c *Config) { c.Partition = "azure" },
		"node_id":          func(c *Config) { c.NodeID = "bad id" },
		"max_active_jobs":  func(c *Config) { c.MaxActiveJobs = -1 },
		"TLS is required":  func(c *Config) { c.InsecureLoopback = false },
		"grpc_addr \"10.0.0.5:7233\" is not a loopback address": func(c *Config) { c.GRPCAddr = "10.0.0.5:7233" },
		"tls_key_file (--tls-key-file) is required": func(c *Config) {
			c.InsecureLoopback, c.TLSCAFile, c.TLSCertFile = false, "ca.pem", "cert.pem"
		},
		"exclude each other": func(c *Config) { c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = "a", "b", "c" },
		"metrics_addr (--metrics-addr) \"9233\" must be host:port": func(c *Config) { c.MetricsAddr = "9233" },
		"metrics_addr \"10.0.0.5:9233\" is not a loopback address": func(c *Config) { c.MetricsAddr = "10.0.0.5:9233" },
		"log_format (--log-format)":                                func(c *Config) { c.LogFormat = "xml" },
		"tls_min_version": func(c *Config) {
			c.InsecureLoopback, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, c.TLSMinVersion = false, "a", "b", "c", "tls11"
		},
	}
	for want, mutate := range cases {
		c := DefaultConfig()
		c.DataDir, c.BootstrapExpect, c.InsecureLoopback = "/d", 1, true
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestSecondProcessOnTheSameDataDirIsRefused(t *testing.T) {
	cfg := TestConfig(t, "solo")
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	again := TestConfig(t, "solo")
	again.DataDir = cfg.DataDir
	if _, err := New(again); err == nil || !strings.Contains(err.Error(), "in use by another perfleet process") {
		t.Fatalf("want a data dir in use error, got %v", err)
	}
}
