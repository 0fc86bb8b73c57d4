package endpoint

import (
	"context"
	"fmt"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// CreateAIWorkloadConfig validates the spec strictly and stores the config.
func (e *Endpoint) CreateAIWorkloadConfig(ctx context.Context, req *pb.CreateAIWorkloadConfigRequest) (*pb.CreateAIWorkloadConfigResponse, error) {
	if err := validateCreateWorkloadConfig(req); err != nil {
		return nil, err
	}
	account := e.b.Account(ctx)
	name := req.GetAiWorkloadConfigName()
	rec := &pb.WorkloadConfigRecord{AccountId: account, Config: &pb.DescribeAIWorkloadConfigResponse{
		AiWorkloadConfigArn:  e.b.Scope().Build(account, state.KindWorkloadConfig, name),
		AiWorkloadConfigName: name,
		AiWorkloadConfigs:    req.GetAiWorkloadConfigs(),
		DatasetConfig:        req.GetDatasetConfig(),
		Tags:                 req.GetTags(),
		CreationTime:         e.now(),
	}}
	arn, err := e.create(ctx, &pb.CreateResourceCommand{WorkloadConfig: rec,
		ClientToken: e.clientToken(account, "CreateAIWorkloadConfig", req.GetClientToken(), req)})
	if err != nil {
		return nil, err
	}
	return &pb.CreateAIWorkloadConfigResponse{AiWorkloadConfigArn: arn}, nil
}

func validateCreateWorkloadConfig(req *pb.CreateAIWorkloadConfigRequest) error {
	var c validate.Checker
	c.Check("ai_workload_config_name", names.Name(req.GetAiWorkloadConfigName()))
	checkWorkloadSpec(&c, "ai_workload_configs.workload_spec.inline", req.GetAiWorkloadConfigs().GetWorkloadSpec().GetInline())
	if ds := req.GetDatasetConfig(); ds != nil {
		chans := ds.GetInputDataConfig()
		if len(chans) == 0 || len(chans) > 20 {
			c.Addf("dataset_config.input_data_config", "must have 1-20 channels, got %d", len(chans))
		}
		seen := map[string]bool{}
		for i, ch := range chans {
			f := fmt.Sprintf("dataset_config.input_data_config[%d]", i)
			c.Check(f+".channel_name", names.ChannelName(ch.GetChannelName()))
			if seen[ch.GetChannelName()] {
				c.Addf(f+".channel_name", "duplicates channel %q", ch.GetChannelName())
			}
			seen[ch.GetChannelName()] = true
			c.Check(f+".data_source.s3_data_source.s3_uri", names.Location(ch.GetDataSource().GetS3DataSource().GetS3Uri()))
		}
	}
	checkTags(&c, req.GetTags())
	checkClientToken(&c, req.GetClientToken())
	return c.Err()
}

// DescribeAIWorkloadConfig returns one config.
func (e *Endpoint) DescribeAIWorkloadConfig(ctx context.Context, req *pb.DescribeAIWorkloadConfigRequest) (*pb.DescribeAIWorkloadConfigResponse, error) {
	account := e.b.Account(ctx)
	var c validate.Checker
	name := e.identifierName(&c, "ai_workload_config_name", req.GetAiWorkloadConfigName(), state.KindWorkloadConfig, account)
	if err := c.Err(); err != nil {
		return nil, err
	}
	rec, err := e.b.State().WorkloadConfig(account, name)
	if err != nil {
		return nil, err
	}
	return rec.GetConfig(), nil
}

// ListAIWorkloadConfigs filters, sorts and pages the account's configs.
func (e *Endpoint) ListAIWorkloadConfigs(ctx context.Context, req *pb.ListAIWorkloadConfigsRequest) (*pb.ListAIWorkloadConfigsResponse, error) {
	q := &listQuery{nameContains: req.GetNameContains(), after: req.GetCreationTimeAfter(), before: req.GetCreationTimeBefore(),
		sortBy: req.GetSortBy(), sortOrder: req.GetSortOrder(), maxResults: req.GetMaxResults(), nextToken: req.GetNextToken(),
		kind: state.KindWorkloadConfig}
	if err := q.validate(); err != nil {
		return nil, err
	}
	account := e.b.Account(ctx)
	recs, err := e.b.State().WorkloadConfigs(account)
	if err != nil {
		return nil, err
	}
	rows := make([]listRow, len(recs))
	for i, r := range recs {
		cfg := r.GetConfig()
		rows[i] = listRow{name: cfg.GetAiWorkloadConfigName(), created: cfg.GetCreationTime().AsTime().UnixNano(), item: cfg}
	}
	page, next, err := q.page(account, rows, e.b.PageKey())
	if err != nil {
		return nil, err
	}
	resp := &pb.ListAIWorkloadConfigsResponse{NextToken: next}
	for _, r := range page {
		cfg := r.item.(*pb.DescribeAIWorkloadConfigResponse)
		resp.AiWorkloadConfigs = append(resp.AiWorkloadConfigs, &pb.AIWorkloadConfigSummary{
			AiWorkloadConfigName: cfg.GetAiWorkloadConfigName(), AiWorkloadConfigArn: cfg.GetAiWorkloadConfigArn(), CreationTime: cfg.GetCreationTime()})
	}
	return resp, nil
}

// DeleteAIWorkloadConfig deletes a config that no active job references.
func (e *Endpoint) DeleteAIWorkloadConfig(ctx context.Context, req *pb.DeleteAIWorkloadConfigRequest) (*pb.DeleteAIWorkloadConfigResponse, error) {
	account := e.b.Account(ctx)
	var c validate.Checker
	name := e.identifierName(&c, "ai_workload_config_name", req.GetAiWorkloadConfigName(), state.KindWorkloadConfig, account)
	if err := c.Err(); err != nil {
		return nil, err
	}
	arn, err := e.remove(ctx, state.KindWorkloadConfig, account, name)
	if err != nil {
		return nil, err
	}
	return &pb.DeleteAIWorkloadConfigResponse{AiWorkloadConfigArn: arn}, nil
}
