package endpoint

import (
	"context"
	"fmt"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// taggable checks a resource ARN for the tag calls and returns its parts.
func (e *Endpoint) taggable(c *validate.Checker, resource string) arn.ARN {
	a, err := arn.Parse(resource)
	if err != nil {
		c.Check("resource_arn", err)
		return a
	}
	sc := e.b.Scope()
	switch {
	case a.ResourceType != state.KindWorkloadConfig && a.ResourceType != state.KindBenchmark && a.ResourceType != state.KindRecommendation:
		c.Addf("resource_arn", "must name an ai-workload-config, ai-benchmark-job or ai-recommendation-job, not %q", a.ResourceType)
	case a.Partition != sc.Partition || a.Region != sc.Region:
		c.Addf("resource_arn", "is in %s/%s; this cluster serves partition %s, region %s", a.Partition, a.Region, sc.Partition, sc.Region)
	}
	return a
}

func (e *Endpoint) setTags(ctx context.Context, a arn.ARN, set []*pb.Tag, remove []string) ([]*pb.Tag, error) {
	res, err := e.b.Apply(ctx, fsm.SetTagsType, &pb.SetTagsCommand{Kind: a.ResourceType, AccountId: a.Account, Name: a.Name, Set: set, Remove: remove})
	if err != nil {
		return nil, err
	}
	return res.([]*pb.Tag), nil
}

// TagResource adds or replaces tags.
func (e *Endpoint) TagResource(ctx context.Context, req *pb.TagResourceRequest) (*pb.TagResourceResponse, error) {
	var c validate.Checker
	a := e.taggable(&c, req.GetResourceArn())
	if len(req.GetTags()) == 0 {
		c.Add("tags", "must have at least 1 tag")
	}
	checkTags(&c, req.GetTags())
	if err := c.Err(); err != nil {
		return nil, err
	}
	tags, err := e.setTags(ctx, a, req.GetTags(), nil)
	return &pb.TagResourceResponse{Tags: tags}, err
}

// UntagResource removes tags by key.
func (e *Endpoint) UntagResource(ctx context.Context, req *pb.UntagResourceRequest) (*pb.UntagResourceResponse, error) {
	var c validate.Checker
	a := e.taggable(&c, req.GetResourceArn())
	switch n := len(req.GetTagKeys()); {
	case n == 0:
		c.Add("tag_keys", "must have at least 1 key")
	case n > names.MaxTags:
		c.Addf("tag_keys", "must have at most %d keys, got %d", names.MaxTags, n)
	}
	for i, k := range req.GetTagKeys() {
		c.Check(fmt.Sprintf("tag_keys[%d]", i), names.TagKey(k))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	tags, err := e.setTags(ctx, a, nil, req.GetTagKeys())
	return &pb.UntagResourceResponse{Tags: tags}, err
}

// ListTags returns a resource's tags.
func (e *Endpoint) ListTags(ctx context.Context, req *pb.ListTagsRequest) (*pb.ListTagsResponse, error) {
	var c validate.Checker
	a := e.taggable(&c, req.GetResourceArn())
	if err := c.Err(); err != nil {
		return nil, err
	}
	// An empty change returns the current tags without writing.
	st := e.b.State()
	var tags []*pb.Tag
	switch a.ResourceType {
	case state.KindWorkloadConfig:
		r, err := st.WorkloadConfig(a.Account, a.Name)
		if err != nil {
			return nil, err
		}
		tags = r.GetConfig().GetTags()
	default:
		j, err := st.Job(a.ResourceType, a.Account, a.Name)
		if err != nil {
			return nil, err
		}
		if j.Benchmark != nil {
			tags = j.Benchmark.GetJob().GetTags()
		} else {
			tags = j.Recommend.GetJob().GetTags()
		}
	}
	return &pb.ListTagsResponse{Tags: sortedTags(tags)}, nil
}

func sortedTags(tags []*pb.Tag) []*pb.Tag {
	out := append([]*pb.Tag(nil), tags...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].GetKey() < out[j-1].GetKey(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
