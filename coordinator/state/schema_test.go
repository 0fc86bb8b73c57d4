package state

import (
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// RoleARN is the role_arn of either kind of job (the runner hands it to
// the agents, which read Secrets Manager references as that role).
func TestJobRoleARN(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/Bench"
	b := newBenchmarkJob(&pb.BenchmarkJobRecord{Job: &pb.DescribeAIBenchmarkJobResponse{AiBenchmarkJobName: "b", RoleArn: role}})
	r := newRecommendationJob(&pb.RecommendationJobRecord{Job: &pb.DescribeAIRecommendationJobResponse{AiRecommendationJobName: "r", RoleArn: role}})
	none := newBenchmarkJob(&pb.BenchmarkJobRecord{Job: &pb.DescribeAIBenchmarkJobResponse{AiBenchmarkJobName: "n"}})
	if b.RoleARN() != role || r.RoleARN() != role || none.RoleARN() != "" {
		t.Fatalf("RoleARN: %q %q %q", b.RoleARN(), r.RoleARN(), none.RoleARN())
	}
}
