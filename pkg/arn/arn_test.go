package arn

import (
	"errors"
	"testing"
)

func TestBuildParseRoundTrip(t *testing.T) {
	scopes := []Scope{{Partition: "aws", Region: "us-east-1"}, {Partition: "aws-cn", Region: "cn-north-1"}, {Partition: "aws", Region: ""}}
	for _, sc := range scopes {
		for _, typ := range []string{WorkloadConfig, BenchmarkJob, RecommendationJob} {
			s := sc.Build("123456789012", typ, "my-resource-1")
			got, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			want := ARN{Partition: sc.Partition, Region: sc.Region, Account: "123456789012", ResourceType: typ, Name: "my-resource-1"}
			if got != want {
				t.Errorf("Parse(%q) = %+v, want %+v", s, got, want)
			}
			if !IsARN(s) {
				t.Errorf("IsARN(%q) = false", s)
			}
		}
	}
}

func TestBuildFormat(t *testing.T) {
	got := Scope{Partition: "aws", Region: "eu-west-1"}.Build("111122223333", BenchmarkJob, "b1")
	if want := "arn:aws:sagemaker:eu-west-1:111122223333:ai-benchmark-job/b1"; got != want {
		t.Fatalf("Build = %q, want %q", got, want)
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"bare name", "my-config"},
		{"short account", "arn:aws:sagemaker:us-east-1:12345:ai-workload-config/x"},
		{"long account", "arn:aws:sagemaker:us-east-1:1234567890123:ai-workload-config/x"},
		{"letters in account", "arn:aws:sagemaker:us-east-1:12345678901a:ai-workload-config/x"},
		{"other service", "arn:aws:s3:us-east-1:123456789012:ai-workload-config/x"},
		{"other partition", "arn:gcp:sagemaker:us-east-1:123456789012:ai-workload-config/x"},
		{"no resource name", "arn:aws:sagemaker:us-east-1:123456789012:ai-workload-config/"},
		{"no slash", "arn:aws:sagemaker:us-east-1:123456789012:ai-workload-config"},
		{"upper-case type", "arn:aws:sagemaker:us-east-1:123456789012:AI-workload-config/x"},
		{"upper-case region", "arn:aws:sagemaker:US-EAST-1:123456789012:ai-workload-config/x"},
		{"missing field", "arn:aws:sagemaker:123456789012:ai-workload-config/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

func TestParseKeepsWhatFollowsTheFirstSlash(t *testing.T) {
	// The name is validated by the caller (pkg/names); Parse only splits.
	a, err := Parse("arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if a.ResourceType != BenchmarkJob || a.Name != "a/b" {
		t.Fatalf("got %+v", a)
	}
}

func TestIsARN(t *testing.T) {
	for in, want := range map[string]bool{"arn:aws:x": true, "arn:": true, "my-name": false, "": false, "ARN:aws": false} {
		if got := IsARN(in); got != want {
			t.Errorf("IsARN(%q) = %v, want %v", in, got, want)
		}
	}
}
