package runner

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/workload"
)

// jobTarget is where a job's requests go.
type jobTarget struct {
	// label names the target in logs and results: the URL, or the
	// registered endpoint's name and URLs.
	label string
	// urls are the base URLs; shard i of a level targets urls[i%len(urls)].
	urls []string
	// models are the model names requests rotate through.
	models []string
	// spec and canonical are the workload with the endpoint's API type
	// filled in, when the spec left it to the endpoint.
	spec      *workload.Spec
	canonical []byte
}

// url returns the URL a level's shard index targets.
func (t *jobTarget) url(shard int) string {
	if len(t.urls) == 0 {
		return ""
	}
	return t.urls[shard%len(t.urls)]
}

// resolveTarget turns a benchmark target into URLs, models and the spec to
// send: an http(s) URL is used as it is; any other identifier names (or is
// the ARN of) an endpoint registered in the job's account.
//
// apiGiven says whether the workload document named its API; when it did
// not, the endpoint's API type replaces the default.
func resolveTarget(st *state.Store, account string, ep *pb.BenchmarkEndpoint, spec *workload.Spec, canonical []byte, apiGiven bool) (*jobTarget, error) {
	t := &jobTarget{spec: spec, canonical: canonical}
	for _, ic := range ep.GetInferenceComponents() {
		t.models = append(t.models, ic.GetIdentifier())
	}
	ident := ep.GetIdentifier()
	if strings.Contains(ident, "://") {
		if u, err := url.Parse(ident); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("benchmark target %q is not an http(s):// URL", ident)
		}
		t.label, t.urls = ident, []string{ident}
		return t, nil
	}
	name := ident
	if a, err := arn.Parse(ident); err == nil {
		if a.Account != account || a.ResourceType != state.KindEndpoint {
			return nil, fmt.Errorf("benchmark target %q is not an endpoint of account %s", ident, account)
		}
		name = a.Name
	}
	reg, err := st.Endpoint(account, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("benchmark target: endpoint %q is no longer registered (perfleet endpoint register)", name)
	} else if err != nil {
		return nil, err
	}
	t.urls = reg.GetUrls()
	if len(t.urls) == 0 {
		return nil, fmt.Errorf("benchmark target: endpoint %q has no URLs", name)
	}
	t.label = fmt.Sprintf("endpoint %s (%s)", name, strings.Join(t.urls, ", "))
	if len(t.models) == 0 && len(spec.Parameters.Models) == 0 && reg.GetModelName() != "" {
		t.models = []string{reg.GetModelName()}
	}
	if api := workload.API(reg.GetApiType()); api != "" && spec.Parameters.API != api {
		if apiGiven {
			return nil, fmt.Errorf("benchmark target: endpoint %q speaks %s but the workload spec's parameters.api is %s; make them agree", name, api, spec.Parameters.API)
		}
		s := *spec
		s.Parameters.API, s.Tooling.APIStandard = api, workload.StandardOf(api)
		doc, err := s.Canonical()
		if err != nil {
			return nil, err
		}
		if _, err := workload.Parse(doc); err != nil {
			return nil, fmt.Errorf("benchmark target: the workload with endpoint %q's API %s: %v", name, api, err)
		}
		t.spec, t.canonical = &s, doc
	}
	return t, nil
}
