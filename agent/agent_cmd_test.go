package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAgentConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(p, []byte("id: gpu-7\njoin: [10.0.0.1:7235, 10.0.0.2:7235]\ninstance_type: lab-8xH100\n"+
		"labels:\n  rack: r1\nsample_interval: 500ms\nsimulate_gpus: 1xL4\nmetrics_addr: 0.0.0.0:9234\nlog_format: json\n"+
		"secrets_credentials: agent\n"), 0o600)
	f := &agentFlags{configFile: p}
	if err := loadAgentFile(rootCmd, f); err != nil {
		t.Fatal(err)
	}
	if f.id != "gpu-7" || f.join != "10.0.0.1:7235,10.0.0.2:7235" || f.instanceType != "lab-8xH100" ||
		f.sampleInterval != 500*time.Millisecond || f.simulateGPUs != "1xL4" || len(f.labels) != 1 || f.labels[0] != "rack=r1" ||
		f.metricsAddr != "0.0.0.0:9234" || f.logFormat != "json" || f.secretsCreds != "agent" {
		t.Fatalf("config not applied: %+v", f)
	}
	os.WriteFile(p, []byte("id: x\ninstance_typ: y\n"), 0o600)
	if err := loadAgentFile(rootCmd, &agentFlags{configFile: p}); err == nil || !strings.Contains(err.Error(), "instance_typ") {
		t.Fatalf("want an error naming instance_typ, got %v", err)
	}
}

// --secrets-credentials is documented in --help, defaults to job-role, and
// refuses other values before anything starts.
func TestSecretsCredentialsFlag(t *testing.T) {
	fl := rootCmd.Flags().Lookup("secrets-credentials")
	if fl == nil || fl.DefValue != "job-role" || !strings.Contains(fl.Usage, "agent") {
		t.Fatalf("flag: %+v", fl)
	}
	if !strings.Contains(rootCmd.Long, "--secrets-credentials agent") || !strings.Contains(rootCmd.Long, "AssumeRole") {
		t.Fatal("--help does not explain how secrets are read")
	}
	f := &agentFlags{secretsCreds: "instance-role", join: "127.0.0.1:1", logLevel: "info", logFormat: "text"}
	if err := runAgent(rootCmd, f); err == nil || !strings.Contains(err.Error(), "--secrets-credentials") {
		t.Fatalf("got %v", err)
	}
}
