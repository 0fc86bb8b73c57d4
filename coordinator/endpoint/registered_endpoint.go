package endpoint

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
	"github.com/perfleet/perfleet/pkg/workload"
)

// maxEndpointURLs bounds a registered endpoint's URLs.
const maxEndpointURLs = 16

var endpointAPITypes = []workload.API{workload.APIOpenAIChat, workload.APIOpenAICompletions, workload.APIKServeV2, workload.APIHTTP}

// RegisterEndpoint stores a named endpoint, or replaces the settings of one
// already registered under the name.
func (e *Endpoint) RegisterEndpoint(ctx context.Context, req *pb.RegisterEndpointRequest) (*pb.RegisterEndpointResponse, error) {
	if err := validateRegisterEndpoint(req); err != nil {
		return nil, err
	}
	account, name, now := e.b.Account(ctx), req.GetEndpointName(), e.now()
	rec := &pb.EndpointRecord{AccountId: account, Endpoint: &pb.DescribeEndpointResponse{
		EndpointName: name, EndpointArn: e.b.Scope().Build(account, state.KindEndpoint, name),
		Urls: req.GetUrls(), ApiType: req.GetApiType(), ModelName: req.GetModelName(), Tags: req.GetTags(),
		CreationTime: now, LastModifiedTime: now,
	}}
	res, err := e.b.Apply(ctx, fsm.PutEndpointType, &pb.PutEndpointCommand{Endpoint: rec})
	if err != nil {
		return nil, err
	}
	return &pb.RegisterEndpointResponse{EndpointArn: res.(string)}, nil
}

func validateRegisterEndpoint(req *pb.RegisterEndpointRequest) error {
	var c validate.Checker
	c.Check("endpoint_name", names.Name(req.GetEndpointName()))
	urls := req.GetUrls()
	if len(urls) == 0 || len(urls) > maxEndpointURLs {
		c.Addf("urls", "must have 1-%d URLs, got %d", maxEndpointURLs, len(urls))
	}
	seen := map[string]bool{}
	for i, u := range urls {
		f := fmt.Sprintf("urls[%d]", i)
		if err := targetURL(u); err != nil {
			c.Add(f, err.Error())
		} else if seen[u] {
			c.Addf(f, "duplicates %q", u)
		}
		seen[u] = true
	}
	if t := req.GetApiType(); t != "" {
		ok := false
		for _, a := range endpointAPITypes {
			ok = ok || string(a) == t
		}
		if !ok {
			c.Addf("api_type", "must be one of openai-chat, openai-completions, kserve-v2, http (or empty for the workload's); got %q", t)
		}
	}
	if len(req.GetModelName()) > 256 {
		c.Addf("model_name", "must be at most 256 characters, got %d", len(req.GetModelName()))
	}
	checkTags(&c, req.GetTags())
	return c.Err()
}

// targetURL checks one http(s) URL of a benchmark target.
func targetURL(s string) error {
	if len(s) > 256 {
		return fmt.Errorf("must be at most 256 characters, got %d", len(s))
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s)://host[:port] URL; got %q", s)
	}
	if u.User != nil {
		// Credentials in a URL would show in Describe, job logs and audit
		// records; workloads take them as secret references (api_key).
		return fmt.Errorf("must not carry user:password@; give credentials as a secret reference (secrets.api_key)")
	}
	return nil
}

// DescribeEndpoint returns a registered endpoint.
func (e *Endpoint) DescribeEndpoint(ctx context.Context, req *pb.DescribeEndpointRequest) (*pb.DescribeEndpointResponse, error) {
	account := e.b.Account(ctx)
	var c validate.Checker
	name := e.identifierName(&c, "endpoint_name", req.GetEndpointName(), state.KindEndpoint, account)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return e.b.State().Endpoint(account, name)
}

// ListEndpoints pages the account's endpoints in name order.
func (e *Endpoint) ListEndpoints(ctx context.Context, req *pb.ListEndpointsRequest) (*pb.ListEndpointsResponse, error) {
	q := &listQuery{nameContains: req.GetNameContains(), sortBy: "Name", sortOrder: "Ascending",
		maxResults: req.GetMaxResults(), nextToken: req.GetNextToken(), kind: state.KindEndpoint}
	if err := q.validate(); err != nil {
		return nil, err
	}
	account := e.b.Account(ctx)
	eps, err := e.b.State().Endpoints(account)
	if err != nil {
		return nil, err
	}
	rows := make([]listRow, len(eps))
	for i, ep := range eps {
		rows[i] = listRow{name: ep.GetEndpointName(), created: ep.GetCreationTime().AsTime().UnixNano(), item: ep}
	}
	page, next, err := q.page(account, rows, e.b.PageKey())
	if err != nil {
		return nil, err
	}
	resp := &pb.ListEndpointsResponse{NextToken: next}
	for _, r := range page {
		resp.Endpoints = append(resp.Endpoints, r.item.(*pb.DescribeEndpointResponse))
	}
	return resp, nil
}

// DeregisterEndpoint removes an endpoint no running benchmark job targets.
func (e *Endpoint) DeregisterEndpoint(ctx context.Context, req *pb.DeregisterEndpointRequest) (*pb.DeregisterEndpointResponse, error) {
	account := e.b.Account(ctx)
	var c validate.Checker
	name := e.identifierName(&c, "endpoint_name", req.GetEndpointName(), state.KindEndpoint, account)
	if err := c.Err(); err != nil {
		return nil, err
	}
	arn, err := e.remove(ctx, state.KindEndpoint, account, name)
	if err != nil {
		return nil, err
	}
	return &pb.DeregisterEndpointResponse{EndpointArn: arn}, nil
}

// checkTarget checks a benchmark endpoint identifier: an http(s) URL, or
// the name or ARN of an endpoint registered in the caller's account.
func (e *Endpoint) checkTarget(c *validate.Checker, field, ident, account string) {
	switch {
	case ident == "":
		c.Add(field, "is required: an http(s)://host:port URL or a registered endpoint name")
	case len(ident) > 256:
		c.Addf(field, "must be at most 256 characters, got %d", len(ident))
	case strings.Contains(ident, "://"):
		if err := targetURL(ident); err != nil {
			c.Addf(field, "must be an http(s)://host:port URL or a registered endpoint name; got %q", ident)
		}
	default:
		name := e.identifierName(c, field, ident, state.KindEndpoint, account)
		if name == "" {
			return // identifierName said why
		}
		if _, err := e.b.State().Endpoint(account, name); err != nil {
			// Not the list of registered names: the caller may lack
			// sagemaker:ListEndpoints.
			c.Addf(field, "names no registered endpoint %q; see 'perfleet endpoint list', register it with 'perfleet endpoint register', or give an http(s):// URL", name)
		}
	}
}
