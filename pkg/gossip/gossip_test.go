package gossip

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestMetaRoundTripAndLimit(t *testing.T) {
	m := &pb.GossipMeta{Role: RoleAgent, Id: "gpu-1", Version: "0.1.0", GrpcAddr: "10.0.0.1:7240", InstanceType: "lab-8xH100",
		Gpus: &pb.GPUSummary{Count: 8, Model: "H100-80GB", MemoryMib: 81559, Source: "nvml"}, Labels: map[string]string{"rack": "r1", "subnet": "s-1"}}
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != metaVersion || len(b) > 128 {
		t.Fatalf("meta should be compact and versioned: %d bytes, version %d", len(b), b[0])
	}
	got, err := DecodeMeta(b)
	if err != nil || !proto.Equal(got, m) {
		t.Fatalf("round trip: %v %v", err, got)
	}
	if _, err := DecodeMeta(append([]byte{9}, b[1:]...)); err == nil {
		t.Fatal("unknown version accepted")
	}
	m.Labels["big"] = strings.Repeat("x", 600)
	if _, err := EncodeMeta(m); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("want ErrMetaTooLarge, got %v", err)
	}
}
