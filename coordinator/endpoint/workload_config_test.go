package endpoint_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func channels(n int) []*pb.InputDataConfig {
	out := make([]*pb.InputDataConfig, n)
	for i := range out {
		out[i] = channel(fmt.Sprintf("ch-%d", i), fmt.Sprintf("s3://datasets-bucket/%d.jsonl", i))
	}
	return out
}

func TestCreateWorkloadConfigRules(t *testing.T) {
	const inline = "ai_workload_configs.workload_spec.inline"
	const chan0 = "dataset_config.input_data_config[0]"
	cases := []struct {
		name string
		set  func(r *pb.CreateAIWorkloadConfigRequest)
		w    *want // nil: the request must succeed
	}{
		{"valid", func(r *pb.CreateAIWorkloadConfigRequest) {}, nil},
		{"no dataset", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig = nil }, nil},
		{"20 channels", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig.InputDataConfig = channels(20) }, nil},
		{"file dataset", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.DatasetConfig.InputDataConfig = []*pb.InputDataConfig{channel("d", "file:///data/sharegpt.jsonl")}
		}, nil},
		{"JSON spec", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.AiWorkloadConfigs.WorkloadSpec.Inline = `{"benchmark": {"type": "aiperf"}, "parameters": {"concurrency": [2]}}`
		}, nil},
		{"empty spec", func(r *pb.CreateAIWorkloadConfigRequest) { r.AiWorkloadConfigs.WorkloadSpec.Inline = " \n" },
			ptr(invalid(inline, "is required"))},
		{"no workload configs", func(r *pb.CreateAIWorkloadConfigRequest) { r.AiWorkloadConfigs = nil },
			ptr(invalid(inline, "is required"))},
		{"unknown spec key", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.AiWorkloadConfigs.WorkloadSpec.Inline = "benchmark: {type: aiperf}\nparameters: {xyz: 1}\n"
		}, ptr(invalid(inline+"[parameters.xyz]", "unknown key"))},
		{"wrong benchmark type", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.AiWorkloadConfigs.WorkloadSpec.Inline = "benchmark: {type: locust}\n"
		}, ptr(invalid(inline+"[benchmark.type]", "aiperf"))},
		{"spec not YAML", func(r *pb.CreateAIWorkloadConfigRequest) { r.AiWorkloadConfigs.WorkloadSpec.Inline = "{" },
			ptr(invalid(inline, "invalid JSON or YAML"))},
		{"spec not a mapping", func(r *pb.CreateAIWorkloadConfigRequest) { r.AiWorkloadConfigs.WorkloadSpec.Inline = "[1, 2]" },
			ptr(invalid(inline, "must be a mapping"))},
		{"0 channels", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig.InputDataConfig = nil },
			ptr(invalid("dataset_config.input_data_config", "1-20 channels, got 0"))},
		{"21 channels", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig.InputDataConfig = channels(21) },
			ptr(invalid("dataset_config.input_data_config", "1-20 channels, got 21"))},
		{"bad channel name", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.DatasetConfig.InputDataConfig[0].ChannelName = "my channel"
		},
			ptr(invalid(chan0+".channel_name", "must be 1-64 characters matching"))},
		{"empty channel name", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig.InputDataConfig[0].ChannelName = "" },
			ptr(invalid(chan0+".channel_name", "is required"))},
		{"duplicate channel", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.DatasetConfig.InputDataConfig = append(r.DatasetConfig.InputDataConfig, channel("dataset", "s3://datasets-bucket/other.jsonl"))
		}, ptr(invalid("dataset_config.input_data_config[1].channel_name", `duplicates channel "dataset"`))},
		{"http channel uri", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.DatasetConfig.InputDataConfig[0].DataSource.S3DataSource.S3Uri = "http://datasets-bucket/x.jsonl"
		}, ptr(invalid(chan0+".data_source.s3_data_source.s3_uri", `got scheme "http"`))},
		{"missing channel uri", func(r *pb.CreateAIWorkloadConfigRequest) { r.DatasetConfig.InputDataConfig[0].DataSource = nil },
			ptr(invalid(chan0+".data_source.s3_data_source.s3_uri", "is required"))},
		{"bad channel bucket", func(r *pb.CreateAIWorkloadConfigRequest) {
			r.DatasetConfig.InputDataConfig[0].DataSource.S3DataSource.S3Uri = "s3://Datasets_Bucket/x"
		}, ptr(invalid(chan0+".data_source.s3_data_source.s3_uri", "s3 bucket"))},
	}
	v := newEnv(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := configReq(fmt.Sprintf("cfg-%d", i))
			tc.set(req)
			arn, err := v.createConfig(req)
			if tc.w == nil {
				if err != nil {
					t.Fatalf("valid request failed: %v", err)
				}
				if want := scope.Build(account, "ai-workload-config", req.GetAiWorkloadConfigName()); arn != want {
					t.Fatalf("ARN = %q, want %q", arn, want)
				}
				return
			}
			checkErr(t, err, *tc.w)
			if _, err := v.e.DescribeAIWorkloadConfig(v.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: req.GetAiWorkloadConfigName()}); err == nil {
				t.Fatal("a refused create stored the config")
			}
		})
	}
}

func TestDescribeWorkloadConfigReturnsWhatWasCreated(t *testing.T) {
	v := newEnv(t)
	req := configReq("wl")
	arn := v.mustCreateConfig(req)
	got, err := v.e.DescribeAIWorkloadConfig(v.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAiWorkloadConfigArn() != arn || !got.GetCreationTime().AsTime().Equal(t0) ||
		!proto.Equal(got.GetAiWorkloadConfigs(), req.GetAiWorkloadConfigs()) || !proto.Equal(got.GetDatasetConfig(), req.GetDatasetConfig()) ||
		len(got.GetTags()) != 1 || got.GetTags()[0].GetKey() != "team" {
		t.Fatalf("Describe = %v", got)
	}
}

func ptr[T any](v T) *T { return &v }
