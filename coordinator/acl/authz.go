package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/auth"
)

// Target is what one call does: its IAM action, the resource it acts on and
// the tag values its conditions can test.
type Target struct {
	// Action, e.g. sagemaker:CreateAIBenchmarkJob.
	Action string
	// Resource is the ARN acted on; "" for calls on no single resource
	// (List*), which only policies with Resource "*" allow.
	Resource string
	// ResourceTags are the tags already on the resource.
	ResourceTags map[string]string
	// RequestTags are the tags the call sets.
	RequestTags map[string]string
	// TagKeys are the tag keys the call sets or removes (aws:TagKeys).
	TagKeys []string
	// ReadOnly marks calls that change nothing (CloudTrail readOnly).
	ReadOnly bool
	// Public marks calls any authenticated caller may make (WhoAmI).
	Public bool
	// SourceAccount and SourceArn name the job perfleet acts for, when it
	// acts for one (aws:SourceAccount, aws:SourceArn).
	SourceAccount, SourceArn string
	// Extra are more resources the call needs an action on, such as
	// perfleet:PassRole on a job's role.
	Extra []Target
}

// Authorizer evaluates a principal's attached policies. Parsed policies are
// cached by ARN and version.
type Authorizer struct {
	// State returns the current replicated state.
	State func() *state.Store
	// Now is the clock for aws:CurrentTime.
	Now func() time.Time
	// Region is aws:RequestedRegion.
	Region string

	mu    sync.Mutex
	cache map[string]*auth.Policy // arn#version
}

// Authorize returns nil when id may do t, ErrAccessDenied (with AWS's
// wording) when not. Everything is allowed while ACLs are off.
func (z *Authorizer) Authorize(id *Identity, t Target) error {
	if id.AuthBy == ByNone || id.AuthBy == ByServer || t.Public {
		return nil
	}
	for _, x := range append([]Target{t}, t.Extra...) {
		if err := z.authorizeOne(id, x); err != nil {
			return err
		}
	}
	return nil
}

func (z *Authorizer) authorizeOne(id *Identity, t Target) error {
	policies := z.policies(id.PolicyARNs)
	req := auth.Request{
		Action: t.Action, Resource: t.Resource,
		Principal:    auth.Principal{ARN: id.PrincipalARN, Account: id.Account, Username: id.Username, Tags: id.Tags},
		ResourceTags: t.ResourceTags, RequestTags: t.RequestTags, TagKeys: t.TagKeys,
		SecureTransport: id.SecureTransport, CurrentTime: z.Now(),
		SourceAccount: t.SourceAccount, SourceArn: t.SourceArn,
		Context: map[string][]string{"aws:RequestedRegion": {z.Region}, "aws:userid": {id.PrincipalID}, "aws:PrincipalType": {id.Type}},
	}
	if ip, err := netip.ParseAddr(id.SourceIP); err == nil {
		req.SourceIP = ip
	}
	if id.UserAgent != "" {
		req.Context["aws:UserAgent"] = []string{id.UserAgent}
	}
	d := auth.Evaluate(req, policies...)
	if d.Allowed() {
		// Another account's resource: only a policy that names that
		// account may allow it; a bare "*" does not reach across accounts,
		// except from the management (bootstrap) account.
		acct := state.AccountOfARN(t.Resource)
		if acct == "" || acct == id.Account || id.Account == z.State().Meta().GetAdminAccount() {
			return nil
		}
		var naming []*auth.Policy
		for _, p := range policies {
			if strings.Contains(string(p.Document()), acct) {
				naming = append(naming, p)
			}
		}
		if d = auth.Evaluate(req, naming...); d.Allowed() {
			return nil
		}
		return fmt.Errorf("%w: User: %s is not authorized to perform: %s on resource: %s because the resource is in account %s "+
			"and no identity-based policy that names that account allows it", ErrAccessDenied, id.PrincipalARN, t.Action, t.Resource, acct)
	}
	res := t.Resource
	if res == "" {
		res = "*"
	}
	why := "because no identity-based policy allows the " + t.Action + " action"
	if d.Effect == auth.ExplicitDeny {
		why = "with an explicit deny in an identity-based policy (" + d.String() + ")"
	}
	return fmt.Errorf("%w: User: %s is not authorized to perform: %s on resource: %s %s", ErrAccessDenied, id.PrincipalARN, t.Action, res, why)
}

// policies returns the parsed attached policies; a policy that no longer
// exists or does not parse contributes nothing.
func (z *Authorizer) policies(arns []string) []*auth.Policy {
	st := z.State()
	var out []*auth.Policy
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cache == nil || len(z.cache) > 4096 {
		z.cache = map[string]*auth.Policy{}
	}
	for _, a := range arns {
		p, err := st.Policy(a)
		if err != nil {
			continue
		}
		key := a + "#" + strconv.FormatInt(p.GetVersion(), 10)
		parsed, ok := z.cache[key]
		if !ok {
			if parsed, err = auth.Parse([]byte(p.GetDocument())); err != nil {
				continue
			}
			z.cache[key] = parsed
		}
		out = append(out, parsed)
	}
	return out
}
