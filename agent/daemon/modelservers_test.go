package daemon

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/perfleet/perfleet/agent/modelserver"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestModelServerSpec(t *testing.T) {
	got := modelServerSpec(&pb.ModelServerSpec{Id: "a", Framework: "VLLM", Model: "m", ServedModelName: "n",
		ExtraArgs: []string{"--x"}, Env: map[string]string{"K": "v"}, GpuCount: 1, Copies: 8, Port: 8000,
		HealthPath: "/h", ReadinessTimeout: durationpb.New(time.Minute), Runtime: "docker", SimulatedGpu: "L4"})
	if got.ID != "a" || got.Framework != modelserver.FrameworkVLLM || got.Model != "m" || got.ServedModelName != "n" ||
		!slices.Equal(got.Args, []string{"--x"}) || got.Env["K"] != "v" || got.GPUs != 1 || got.Copies != 8 ||
		got.Port != 8000 || got.HealthPath != "/h" || got.ReadinessTimeout != time.Minute ||
		got.Runtime != modelserver.RuntimeDocker || got.SimulatedGPU != "L4" {
		t.Fatalf("spec %+v", got)
	}
	if got.GPUCount() != 8 {
		t.Fatalf("1 GPU x 8 copies: %d devices", got.GPUCount())
	}
	// copies 0 (unset) is one copy.
	if s := modelServerSpec(&pb.ModelServerSpec{Framework: "TGI", Model: "m", GpuCount: 2}); s.Copies != 0 || s.GPUCount() != 2 || s.Validate() != nil {
		t.Fatalf("unset copies: %+v", s)
	}
}
