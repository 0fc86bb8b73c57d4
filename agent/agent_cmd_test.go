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
		"labels:\n  rack: r1\nsample_interval: 500ms\nsimulate_gpus: 1xL4\nmetrics_addr: 0.0.0.0:9234\nlog_format: json\n"), 0o600)
	f := &agentFlags{configFile: p}
	if err := loadAgentFile(rootCmd, f); err != nil {
		t.Fatal(err)
	}
	if f.id != "gpu-7" || f.join != "10.0.0.1:7235,10.0.0.2:7235" || f.instanceType != "lab-8xH100" ||
		f.sampleInterval != 500*time.Millisecond || f.simulateGPUs != "1xL4" || len(f.labels) != 1 || f.labels[0] != "rack=r1" ||
		f.metricsAddr != "0.0.0.0:9234" || f.logFormat != "json" {
		t.Fatalf("config not applied: %+v", f)
	}
	os.WriteFile(p, []byte("id: x\ninstance_typ: y\n"), 0o600)
	if err := loadAgentFile(rootCmd, &agentFlags{configFile: p}); err == nil || !strings.Contains(err.Error(), "instance_typ") {
		t.Fatalf("want an error naming instance_typ, got %v", err)
	}
}
