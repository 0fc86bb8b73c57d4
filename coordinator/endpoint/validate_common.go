package endpoint

import (
	"errors"
	"fmt"
	"strings"

	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
	"github.com/perfleet/perfleet/pkg/workload"
)

// checkTags applies SageMaker's tag rules: at most 50, keys 1-128 characters,
// values up to 256, no duplicate keys.
func checkTags(c *validate.Checker, tags []*pb.Tag) {
	if len(tags) > names.MaxTags {
		c.Addf("tags", "must have at most %d tags, got %d", names.MaxTags, len(tags))
	}
	seen := map[string]bool{}
	for i, t := range tags {
		c.Check(fmt.Sprintf("tags[%d].key", i), names.TagKey(t.GetKey()))
		c.Check(fmt.Sprintf("tags[%d].value", i), names.TagValue(t.GetValue()))
		if seen[t.GetKey()] {
			c.Addf(fmt.Sprintf("tags[%d].key", i), "duplicates tag key %q", t.GetKey())
		}
		seen[t.GetKey()] = true
	}
}

func checkClientToken(c *validate.Checker, tok string) {
	if tok != "" {
		c.Check("client_token", names.ClientToken(tok))
	}
}

// checkWorkloadSpec parses the inline spec strictly and reports each problem
// under the path of the key inside the document.
func checkWorkloadSpec(c *validate.Checker, field, inline string) {
	if strings.TrimSpace(inline) == "" {
		c.Add(field, "is required: a JSON or YAML workload spec with benchmark.type: aiperf")
		return
	}
	_, err := workload.Parse([]byte(inline))
	var errs workload.Errors
	switch {
	case err == nil:
	case errors.As(err, &errs):
		for _, fe := range errs {
			if fe.Path == "" { // the document as a whole
				c.Add(field, fe.Rule)
			} else {
				c.Add(field+"["+fe.Path+"]", fe.Rule)
			}
		}
	default:
		c.Add(field, err.Error())
	}
}

// identifierName resolves a name-or-ARN identifier to a bare name in the
// caller's account. An ARN must name this cluster's partition and region and
// the caller's account (a ValidationException otherwise: cross-account access
// needs a policy).
func (e *Endpoint) identifierName(c *validate.Checker, field, ident, kind, account string) string {
	name, acct, err := names.Identifier(ident, kind)
	if err != nil {
		c.Check(field, err)
		return ""
	}
	if acct == "" {
		return name
	}
	a, _ := arn.Parse(ident)
	scope := e.b.Scope()
	switch {
	case a.Partition != scope.Partition || a.Region != scope.Region:
		c.Addf(field, "ARN names %s/%s; this cluster serves partition %s, region %s", a.Partition, a.Region, scope.Partition, scope.Region)
		return ""
	case acct != account:
		c.Addf(field, "ARN names account %s; this caller can reach only account %s", acct, account)
		return ""
	}
	return name
}
