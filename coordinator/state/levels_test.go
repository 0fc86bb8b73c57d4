package state

import (
	"errors"
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestRecordLevelResultKeepsIndexOrderAndReplaces(t *testing.T) {
	s := New()
	if _, err := s.Create(&pb.CreateResourceCommand{WorkloadConfig: &pb.WorkloadConfigRecord{AccountId: "000000000000",
		Config: &pb.DescribeAIWorkloadConfigResponse{AiWorkloadConfigName: "wl"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(&pb.CreateResourceCommand{BenchmarkJob: &pb.BenchmarkJobRecord{AccountId: "000000000000", WorkloadConfigName: "wl",
		Job: &pb.DescribeAIBenchmarkJobResponse{AiBenchmarkJobName: "j", AiBenchmarkJobStatus: StatusInProgress}}}); err != nil {
		t.Fatal(err)
	}
	record := func(i uint32, requests int64) {
		t.Helper()
		if err := s.RecordLevelResult(&pb.RecordLevelResultCommand{AccountId: "000000000000", Name: "j",
			Level: &pb.LevelResult{Index: i, RequestCount: requests}}); err != nil {
			t.Fatal(err)
		}
	}
	record(1, 10)
	record(0, 5)
	record(1, 11) // a level re-run after a leader change replaces its record
	j, err := s.Job(KindBenchmark, "000000000000", "j")
	if err != nil {
		t.Fatal(err)
	}
	levels := j.Benchmark.GetLevels()
	if len(levels) != 2 || levels[0].GetIndex() != 0 || levels[1].GetIndex() != 1 || levels[1].GetRequestCount() != 11 {
		t.Fatalf("levels %v", levels)
	}
	err = s.RecordLevelResult(&pb.RecordLevelResultCommand{AccountId: "000000000000", Name: "nope", Level: &pb.LevelResult{}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestUpdateRecommendationJobUpsertsCandidatesInOrder(t *testing.T) {
	s := New()
	if _, err := s.Create(&pb.CreateResourceCommand{WorkloadConfig: &pb.WorkloadConfigRecord{AccountId: "000000000000",
		Config: &pb.DescribeAIWorkloadConfigResponse{AiWorkloadConfigName: "wl"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(&pb.CreateResourceCommand{RecommendationJob: &pb.RecommendationJobRecord{AccountId: "000000000000", WorkloadConfigName: "wl",
		Job: &pb.DescribeAIRecommendationJobResponse{AiRecommendationJobName: "r", AiRecommendationJobStatus: StatusInProgress}}}); err != nil {
		t.Fatal(err)
	}
	update := func(cmd *pb.UpdateRecommendationJobCommand) {
		t.Helper()
		cmd.AccountId, cmd.Name = "000000000000", "r"
		if err := s.UpdateRecommendationJob(cmd); err != nil {
			t.Fatal(err)
		}
	}
	update(&pb.UpdateRecommendationJobCommand{Candidates: []*pb.RecommendationCandidate{{Name: "c1", Status: "Pending"}, {Name: "c2", Status: "Pending"}},
		Event: &pb.JobEvent{Message: "planned"}})
	update(&pb.UpdateRecommendationJobCommand{Candidates: []*pb.RecommendationCandidate{{Name: "c1", Status: "Deploying"}}})
	update(&pb.UpdateRecommendationJobCommand{Recommendations: []*pb.AIRecommendation{{AiBenchmarkJobArn: "arn:x"}}, Event: &pb.JobEvent{Message: "ranked"}})
	update(&pb.UpdateRecommendationJobCommand{}) // no recommendations: the ranking stays
	j, err := s.Job(KindRecommendation, "000000000000", "r")
	if err != nil {
		t.Fatal(err)
	}
	c := j.Recommend.GetJob().GetCandidates()
	if len(c) != 2 || c[0].GetName() != "c1" || c[0].GetStatus() != "Deploying" || c[1].GetStatus() != "Pending" {
		t.Fatalf("candidates %v", c)
	}
	if len(j.Recommend.GetJob().GetRecommendations()) != 1 {
		t.Fatalf("recommendations %v", j.Recommend.GetJob().GetRecommendations())
	}
	ev := j.Recommend.GetEvents()
	if len(ev) != 2 || ev[0].GetIndex() != 1 || ev[1].GetIndex() != 2 || ev[1].GetMessage() != "ranked" {
		t.Fatalf("events %v", ev)
	}
	err = s.UpdateRecommendationJob(&pb.UpdateRecommendationJobCommand{AccountId: "000000000000", Name: "nope"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}
