package audit

import (
	"testing"
	"time"
)

func TestFilterMatch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ev := &Event{
		EventTime:          t0,
		EventName:          "DescribeAIBenchmarkJob",
		ReadOnly:           true,
		RecipientAccountID: "111111111111",
		UserIdentity:       UserIdentity{ARN: "arn:aws:iam::111111111111:user/alice", AccountID: "222222222222"},
		Resources: []Resource{
			{ARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-benchmark-job/a"},
			{ARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-workload-config/w"},
		},
	}
	yes, no := true, false
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"start equal", Filter{StartTime: t0}, true},
		{"start after", Filter{StartTime: t0.Add(time.Nanosecond)}, false},
		{"end equal", Filter{EndTime: t0}, true},
		{"end before", Filter{EndTime: t0.Add(-time.Nanosecond)}, false},
		{"window", Filter{StartTime: t0.Add(-time.Hour), EndTime: t0.Add(time.Hour)}, true},
		{"event name", Filter{EventName: "DescribeAIBenchmarkJob"}, true},
		{"other event name", Filter{EventName: "CreateAIBenchmarkJob"}, false},
		{"principal", Filter{PrincipalARN: "arn:aws:iam::111111111111:user/alice"}, true},
		{"other principal", Filter{PrincipalARN: "arn:aws:iam::111111111111:user/bob"}, false},
		{"first resource", Filter{ResourceARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-benchmark-job/a"}, true},
		{"second resource", Filter{ResourceARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-workload-config/w"}, true},
		{"other resource", Filter{ResourceARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-benchmark-job/b"}, false},
		{"account", Filter{AccountID: "111111111111"}, true},
		{"caller account is not the event's", Filter{AccountID: "222222222222"}, false},
		{"read only", Filter{ReadOnly: &yes}, true},
		{"not read only", Filter{ReadOnly: &no}, false},
		{"all match", Filter{StartTime: t0, EndTime: t0, EventName: "DescribeAIBenchmarkJob", AccountID: "111111111111",
			PrincipalARN: "arn:aws:iam::111111111111:user/alice", ResourceARN: "arn:aws:sagemaker:us-west-2:111111111111:ai-benchmark-job/a", ReadOnly: &yes}, true},
		{"one mismatch", Filter{EventName: "DescribeAIBenchmarkJob", ReadOnly: &no}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(ev); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	if (Filter{}).Match(nil) {
		t.Error("nil event matched")
	}
	if (Filter{ResourceARN: "x"}).Match(&Event{}) {
		t.Error("event without resources matched a ResourceARN")
	}
}
