package endpoint_test

import (
	"fmt"
	"testing"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func constraints(metrics ...string) *pb.PerformanceTarget {
	pt := &pb.PerformanceTarget{}
	for _, m := range metrics {
		pt.Constraints = append(pt.Constraints, &pb.PerformanceConstraint{Metric: m})
	}
	return pt
}

func s3Adapters(n int) []*pb.AdapterS3Uri {
	out := make([]*pb.AdapterS3Uri, n)
	for i := range out {
		out[i] = &pb.AdapterS3Uri{AdapterId: fmt.Sprintf("adapter-%d", i), S3Uri: fmt.Sprintf("s3://adapters-bucket/%d", i)}
	}
	return out
}

const modelPackageARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/lora-1/1"

func TestCreateRecommendationJobRules(t *testing.T) {
	const types = "compute_spec.instance_types"
	const ad = "adapter_source"
	type req = pb.CreateAIRecommendationJobRequest
	cases := []struct {
		name string
		set  func(r *req)
		w    *want // nil: the request must succeed
	}{
		{"valid", func(r *req) {}, nil},
		{"hf model", func(r *req) { r.ModelSource.S3.S3Uri = "hf://meta-llama/Llama-3.1-8B" }, nil},
		{"3 instance types", func(r *req) { r.ComputeSpec.InstanceTypes = []string{"ml.g5.xlarge", "ml.p5.48xlarge", "lab-8xH100"} }, nil},
		{"cost goal without types", func(r *req) { r.PerformanceTarget = constraints("cost"); r.ComputeSpec.InstanceTypes = nil }, nil},
		{"no adapters", func(r *req) { r.AdapterSource = nil }, nil},
		{"10 adapters", func(r *req) { r.AdapterSource.S3Uris = s3Adapters(10) }, nil},
		{"model package adapters", func(r *req) {
			r.AdapterSource = &pb.AdapterSource{ModelPackageArns: []*pb.AdapterModelPackage{{AdapterId: "a1", ModelPackageArn: modelPackageARN}}}
		}, nil},
		{"throughput with a dataset", func(r *req) { r.PerformanceTarget = constraints("throughput") }, nil},
		{"throughput, no dataset, optimize_model=false", func(r *req) {
			r.PerformanceTarget = constraints("throughput")
			r.AiWorkloadConfigIdentifier = "wl-nodata"
			r.OptimizeModel = ptr(false)
		}, nil},

		{"missing model source", func(r *req) { r.ModelSource = nil }, ptr(invalid("model_source.s3.s3_uri", "is required"))},
		{"empty hf model", func(r *req) { r.ModelSource.S3.S3Uri = "hf://" }, ptr(invalid("model_source.s3.s3_uri", "hf://org/model"))},
		{"missing output", func(r *req) { r.OutputConfig = nil }, ptr(invalid("output_config.s3_output_location", "is required"))},
		{"0 constraints", func(r *req) { r.PerformanceTarget = nil }, ptr(invalid("performance_target.constraints", "exactly one constraint (ttft-ms, throughput or cost), got 0"))},
		{"2 constraints", func(r *req) { r.PerformanceTarget = constraints("ttft-ms", "cost") }, ptr(invalid("performance_target.constraints", "got 2"))},
		{"bad metric", func(r *req) { r.PerformanceTarget = constraints("latency") }, ptr(invalid("performance_target.constraints[0].metric", `must be one of ttft-ms, throughput, cost; got "latency"`))},
		{"4 instance types", func(r *req) {
			r.ComputeSpec.InstanceTypes = []string{"ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge"}
		},
			ptr(invalid(types, "at most 3 instance types, got 4"))},
		{"duplicate instance type", func(r *req) { r.ComputeSpec.InstanceTypes = []string{"ml.g5.xlarge", "ml.g5.xlarge"} },
			ptr(invalid(types+"[1]", `duplicates "ml.g5.xlarge"`))},
		{"bad instance type", func(r *req) { r.ComputeSpec.InstanceTypes = []string{"ML G5"} }, ptr(invalid(types+"[0]", "must be an instance type"))},
		{"instance type no agent has", func(r *req) { r.ComputeSpec.InstanceTypes = []string{"ml.g5.xlarge", "ml.g6e.12xlarge"} },
			ptr(invalid(types+"[1]", `no live agent has instance type "ml.g6e.12xlarge"; available: lab-8xH100, ml.g5.xlarge, ml.g6.2xlarge, ml.p5.48xlarge`))},
		{"instance type of a failed agent only", func(r *req) { r.ComputeSpec.InstanceTypes = []string{"ml.g5.2xlarge"} },
			ptr(invalid(types+"[0]", `no live agent has instance type "ml.g5.2xlarge"`))},
		{"cost goal with types", func(r *req) { r.PerformanceTarget = constraints("cost") }, ptr(invalid(types, "must be empty for the cost goal"))},
		{"bad framework", func(r *req) { r.InferenceSpecification.Framework = "TRTLLM" }, ptr(invalid("inference_specification.framework", `got "TRTLLM"`))},
		{"capacity reservation preference", func(r *req) { r.ComputeSpec.CapacityReservationConfig.CapacityReservationPreference = "open" },
			ptr(invalid("compute_spec.capacity_reservation_config.capacity_reservation_preference", "must be capacity-reservations-only"))},
		{"both adapter sources", func(r *req) {
			r.AdapterSource.ModelPackageArns = []*pb.AdapterModelPackage{{AdapterId: "a2", ModelPackageArn: modelPackageARN}}
		}, ptr(invalid(ad, "exactly one of s3_uris and model_package_arns"))},
		{"neither adapter source", func(r *req) { r.AdapterSource = &pb.AdapterSource{} }, ptr(invalid(ad, "exactly one of s3_uris and model_package_arns"))},
		{"11 adapters", func(r *req) { r.AdapterSource.S3Uris = s3Adapters(11) }, ptr(invalid(ad, "1-10 adapters, got 11"))},
		{"bad adapter id", func(r *req) { r.AdapterSource.S3Uris[0].AdapterId = "-lora" }, ptr(invalid(ad+".s3_uris[0].adapter_id", "must be 1-63 characters"))},
		{"64-char adapter id", func(r *req) { r.AdapterSource.S3Uris[0].AdapterId = fmt.Sprintf("%064d", 7) }, ptr(invalid(ad+".s3_uris[0].adapter_id", "must be 1-63 characters"))},
		{"duplicate adapter id", func(r *req) {
			r.AdapterSource.S3Uris = append(r.AdapterSource.S3Uris, &pb.AdapterS3Uri{AdapterId: "adapter-1", S3Uri: "s3://adapters-bucket/b"})
		}, ptr(invalid(ad+".s3_uris[1].adapter_id", `duplicates adapter "adapter-1"`))},
		{"bad adapter uri", func(r *req) { r.AdapterSource.S3Uris[0].S3Uri = "ftp://x/y" }, ptr(invalid(ad+".s3_uris[0].s3_uri", `got scheme "ftp"`))},
		{"bad model package arn", func(r *req) {
			r.AdapterSource = &pb.AdapterSource{ModelPackageArns: []*pb.AdapterModelPackage{{AdapterId: "a1", ModelPackageArn: "arn:aws:sagemaker:us-east-1:123456789012:model/x"}}}
		}, ptr(invalid(ad+".model_package_arns[0].model_package_arn", "model-package/<name>"))},
		{"throughput, no dataset, optimize_model default", func(r *req) {
			r.PerformanceTarget = constraints("throughput")
			r.AiWorkloadConfigIdentifier = "wl-nodata"
		}, ptr(invalid("optimize_model", "needs a dataset"))},
		{"throughput, no dataset, optimize_model=true by ARN", func(r *req) {
			r.PerformanceTarget = constraints("throughput")
			r.AiWorkloadConfigIdentifier = scope.Build(account, state.KindWorkloadConfig, "wl-nodata")
			r.OptimizeModel = ptr(true)
		}, ptr(invalid("optimize_model", "set optimize_model=false"))},
	}
	v := withWorkloads(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := recReq(fmt.Sprintf("rec-%d", i))
			tc.set(r)
			arn, err := v.createRec(r)
			if tc.w == nil {
				if err != nil {
					t.Fatalf("valid request failed: %v", err)
				}
				if want := scope.Build(account, state.KindRecommendation, r.GetAiRecommendationJobName()); arn != want {
					t.Fatalf("ARN = %q, want %q", arn, want)
				}
				return
			}
			checkErr(t, err, *tc.w)
		})
	}
}

func TestRecommendationJobOptimizeModelDefaultsToTrue(t *testing.T) {
	v := withWorkloads(t)
	v.mustCreateRec(recReq("r-default"))
	off := recReq("r-off")
	off.OptimizeModel = ptr(false)
	v.mustCreateRec(off)
	for name, want := range map[string]bool{"r-default": true, "r-off": false} {
		got, err := v.e.DescribeAIRecommendationJob(v.ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: name})
		if err != nil || got.GetOptimizeModel() != want || got.GetAiRecommendationJobStatus() != state.StatusInProgress {
			t.Fatalf("Describe(%s) = %v, %v; want optimize_model %v", name, got, err, want)
		}
	}
}
