// Package arn builds and parses the ARNs of perfleet resources:
//
//	arn:<partition>:sagemaker:<region>:<account>:<resource-type>/<name>
//
// Partition and region are node settings; the account is the caller's.
package arn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Resource types.
const (
	WorkloadConfig    = "ai-workload-config"
	BenchmarkJob      = "ai-benchmark-job"
	RecommendationJob = "ai-recommendation-job"
)

// ErrMalformed is returned for a string that is not a perfleet ARN.
var ErrMalformed = errors.New("malformed ARN")

// ARN is a parsed resource ARN.
type ARN struct {
	Partition    string
	Region       string
	Account      string
	ResourceType string
	Name         string
}

// Scope is the partition and region a node serves.
type Scope struct {
	Partition string
	Region    string
}

// Build returns the ARN of a resource in this scope.
func (s Scope) Build(account, resourceType, name string) string {
	return fmt.Sprintf("arn:%s:sagemaker:%s:%s:%s/%s", s.Partition, s.Region, account, resourceType, name)
}

var arnRE = regexp.MustCompile(`^arn:(aws[a-z\-]*):sagemaker:([a-z0-9\-]*):([0-9]{12}):([a-z\-]+)/(.+)$`)

// Parse parses a sagemaker ARN.
func Parse(s string) (ARN, error) {
	m := arnRE.FindStringSubmatch(s)
	if m == nil {
		return ARN{}, fmt.Errorf("%w: must look like arn:aws:sagemaker:<region>:<12-digit account>:<type>/<name>", ErrMalformed)
	}
	return ARN{Partition: m[1], Region: m[2], Account: m[3], ResourceType: m[4], Name: m[5]}, nil
}

// IsARN reports whether s looks like an ARN rather than a bare name.
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }
