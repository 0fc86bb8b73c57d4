package server

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/modelserver"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// buildAgent builds perfleet-agent, whose simulate subcommand serves the
// SIMULATOR framework.
func buildAgent(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds perfleet-agent")
	}
	bin := filepath.Join(t.TempDir(), "perfleet-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/perfleet/perfleet/agent").CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	return bin
}

func TestLaunchModelServerThroughTheLeader(t *testing.T) {
	bin := buildAgent(t)
	servers := TestCluster(t, 1, nil)
	spec, _ := gpu.ParseSimulated("2xH100-80GB")
	a, err := daemon.Start(daemon.Config{ID: "gpu-m", GossipAddr: "127.0.0.1:0", Join: []string{servers[0].GossipAddr()}, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{Seed: "m"}), SampleInterval: 100 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		ModelServers: modelserver.Config{Executable: bin, LogDir: t.TempDir(), CacheDir: t.TempDir(), StopGrace: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Kill() })
	fleet := pb.NewFleetServiceClient(testConn(t, servers[0].Addr()))
	eventually(t, 10*time.Second, "agent connected", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-m"].GetConnected()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	_, err = fleet.LaunchModelServer(ctx, &pb.LaunchModelServerRequest{AgentId: "gpu-m", Spec: &pb.ModelServerSpec{Framework: "SIMULATOR", Model: "m", GpuCount: 3}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "has 2 GPUs") {
		t.Fatalf("3 GPUs on a 2-GPU agent: %v", err)
	}
	_, err = fleet.LaunchModelServer(ctx, &pb.LaunchModelServerRequest{AgentId: "gpu-m", Spec: &pb.ModelServerSpec{Framework: "SIMULATOR", Model: "m", GpuCount: 1, Copies: 3}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "spec.copies") || !strings.Contains(err.Error(), "3 copies of 1 GPUs need 3") {
		t.Fatalf("3 copies on a 2-GPU agent: %v", err)
	}

	resp, err := fleet.LaunchModelServer(ctx, &pb.LaunchModelServerRequest{AgentId: "gpu-m", Spec: &pb.ModelServerSpec{
		Id: "sim", Framework: "SIMULATOR", Model: "demo-llm", GpuCount: 1, ReadinessTimeout: durationpb.New(30 * time.Second)}})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	st := resp.GetStatus()
	if st.GetState() != "ready" || st.GetUrl() == "" || len(st.GetGpus()) != 1 || st.GetSetupTime().AsDuration() <= 0 {
		t.Fatalf("unexpected status %v", st)
	}
	body := httpGet(t, st.GetUrl()+"/v1/models")
	if !strings.Contains(body, "demo-llm") {
		t.Fatalf("/v1/models: %s", body)
	}

	// Load on the simulator shows as utilisation of its GPU only.
	dev := int(st.GetGpus()[0])
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				req := `{"model":"demo-llm","messages":[{"role":"user","content":"hello"}],"max_tokens":400,"ignore_eos":true,"stream":true}`
				r, err := http.Post(st.GetUrl()+"/v1/chat/completions", "application/json", strings.NewReader(req))
				if err != nil {
					return
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
		}()
	}
	eventually(t, 15*time.Second, "simulated GPU busy while the simulator is", func() bool {
		busy, idle := 0.0, 0.0
		for _, s := range a.GPUs().Latest() {
			if s.Index == dev {
				busy = s.GPUUtil
			} else {
				idle = s.GPUUtil
			}
		}
		return busy > 0.2 && idle == 0
	})
	close(stopLoad)
	wg.Wait()

	stopResp, err := fleet.StopModelServer(ctx, &pb.StopModelServerRequest{AgentId: "gpu-m", Id: "sim"})
	if err != nil || stopResp.GetStatus().GetState() != "stopped" {
		t.Fatalf("stop: %v %v", err, stopResp)
	}
	if _, err := http.Get(st.GetUrl() + "/health"); err == nil {
		t.Fatal("simulator still answers after stop")
	}
	_, err = fleet.StopModelServer(ctx, &pb.StopModelServerRequest{AgentId: "gpu-m", Id: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("stop unknown: %v", err)
	}

	// A server that exits before it is ready fails with its last log lines.
	resp, err = fleet.LaunchModelServer(ctx, &pb.LaunchModelServerRequest{AgentId: "gpu-m", Spec: &pb.ModelServerSpec{
		Id: "broken", Framework: "COMMAND", Command: []string{"sh", "-c", "echo loading weights; echo CUDA out of memory >&2; exit 3"}}})
	if err != nil {
		t.Fatalf("launch broken: %v", err)
	}
	if resp.GetStatus().GetState() != "failed" || !strings.Contains(resp.GetStatus().GetFailureReason(), "out of memory") {
		t.Fatalf("broken server: %v", resp.GetStatus())
	}
	t.Logf("failure reason: %s", resp.GetStatus().GetFailureReason())
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}
