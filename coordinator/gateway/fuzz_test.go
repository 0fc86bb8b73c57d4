package gateway

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// FuzzDecodeRequest feeds arbitrary bodies to the JSON gateway's request
// decoder for each kind of request: it must never panic, and a body it
// accepts must survive an encode and decode round trip unchanged.
func FuzzDecodeRequest(f *testing.F) {
	msgs := []func() proto.Message{
		func() proto.Message { return &pb.CreateAIWorkloadConfigRequest{} },
		func() proto.Message { return &pb.CreateAIBenchmarkJobRequest{} },
		func() proto.Message { return &pb.CreateAIRecommendationJobRequest{} },
		func() proto.Message { return &pb.ListAIBenchmarkJobsRequest{} },
		func() proto.Message { return &pb.DescribeAIBenchmarkJobRequest{} },
	}
	f.Add(uint8(0), []byte(`{"AIWorkloadConfigName":"wl","AIWorkloadConfigs":{"WorkloadSpec":{"Inline":"benchmark: {}"}},"Tags":[{"Key":"k","Value":"v"}]}`))
	f.Add(uint8(1), []byte(`{"AIBenchmarkJobName":"j","BenchmarkTarget":{"Endpoint":{"Identifier":"http://h:1","InferenceComponents":[{"Identifier":"c"}]}},"RoleArn":"arn:aws:iam::000000000000:role/r"}`))
	f.Add(uint8(2), []byte(`{"PerformanceTarget":{"Constraints":[{"Metric":"ttft-ms"}]},"ComputeSpec":{"InstanceTypes":["ml.g5.xlarge"]},"OptimizeModel":false}`))
	f.Add(uint8(3), []byte(`{"CreationTimeAfter":1767225600.123456789,"MaxResults":5,"SortOrder":"Descending"}`))
	f.Add(uint8(4), []byte(`{"AIBenchmarkJobName":"a\u0000b"}`))
	f.Add(uint8(1), []byte(`{"RoleArn":1e999}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		mk := msgs[int(kind)%len(msgs)]
		m := mk()
		if err := decodeRequest(body, m); err != nil {
			return
		}
		enc, err := encodeResponse(m)
		if err != nil {
			t.Fatalf("encode a decoded %T: %v", m, err)
		}
		m2 := mk()
		if err := decodeRequest(enc, m2); err != nil {
			t.Fatalf("decode what was encoded (%s): %v", enc, err)
		}
		enc2, err := encodeResponse(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the request:\n%s\n%s", enc, enc2)
		}
	})
}
