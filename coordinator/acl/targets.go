package acl

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/auth"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Resolver works out the Target of a call from its method and request.
type Resolver struct {
	// Scope is the partition and region of ARNs.
	Scope arn.Scope
	// State returns the current replicated state (resource tags, owners of
	// tokens and keys).
	State func() *state.Store
}

// nameFields map a request's name field to the resource type it names.
var nameFields = []struct {
	field protoreflect.Name
	kind  string
}{
	{"ai_benchmark_job_name", state.KindBenchmark},
	{"ai_recommendation_job_name", state.KindRecommendation},
	{"ai_workload_config_name", state.KindWorkloadConfig},
	{"endpoint_name", state.KindEndpoint},
}

// Service names whose methods map to perfleet:<method> actions.
const (
	svcInference = "perfleet.v1.InferenceOptimization"
	svcACL       = "perfleet.v1.ACLService"
)

// Target returns what a call does. method is the full gRPC method name.
func (r *Resolver) Target(method string, req proto.Message, id *Identity) (Target, error) {
	svc, name, ok := splitMethod(method)
	if !ok {
		return Target{}, fmt.Errorf("%w: unknown method %s", ErrAccessDenied, method)
	}
	readOnly := strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get") ||
		strings.HasPrefix(name, "Watch") || name == "WhoAmI" || name == "LookupEvents" || name == "ServerInfo" || name == "StateHash" ||
		name == "RaftListPeers" || name == "SnapshotSave"
	switch svc {
	case svcInference:
		t, err := r.sagemakerTarget(name, req, id)
		t.ReadOnly = readOnly
		return t, err
	case svcACL:
		t, err := r.aclTarget(name, req, id)
		t.ReadOnly = readOnly
		return t, err
	}
	action := "perfleet:" + name
	if !auth.IsKnownAction(action) {
		return Target{}, fmt.Errorf("%w: %s is not an action policies can allow", ErrAccessDenied, method)
	}
	return Target{Action: action, ReadOnly: readOnly}, nil
}

func splitMethod(method string) (svc, name string, ok bool) {
	m := strings.TrimPrefix(method, "/")
	i := strings.LastIndexByte(m, '/')
	if i < 0 {
		return "", "", false
	}
	return m[:i], m[i+1:], true
}

func (r *Resolver) sagemakerTarget(name string, req proto.Message, id *Identity) (Target, error) {
	t := Target{Action: "sagemaker:" + name}
	msg := req.ProtoReflect()
	fields := msg.Descriptor().Fields()
	if fd := fields.ByName("tags"); fd != nil && fd.IsList() {
		t.RequestTags = tagsOf(msg.Get(fd).List())
	}
	if fd := fields.ByName("resource_arn"); fd != nil {
		res := msg.Get(fd).String()
		t.Resource = res
		if a, err := arn.Parse(res); err == nil {
			t.ResourceTags = r.resourceTags(a.ResourceType, a.Account, a.Name)
		}
		if fd := fields.ByName("tag_keys"); fd != nil {
			l := msg.Get(fd).List()
			for i := 0; i < l.Len(); i++ {
				t.TagKeys = append(t.TagKeys, l.Get(i).String())
			}
		}
		return t, nil
	}
	for _, nf := range nameFields {
		fd := fields.ByName(nf.field)
		if fd == nil {
			continue
		}
		n := msg.Get(fd).String()
		if n == "" {
			continue
		}
		account := id.Account
		if arn.IsARN(n) {
			// Name fields also take the resource's ARN: authorize (and
			// audit) that resource, not a name built around the ARN, so
			// Deny statements and resource-tag conditions on it apply.
			a, err := arn.Parse(n)
			if err != nil || a.ResourceType != nf.kind {
				t.Resource = n // the handler refuses it
				break
			}
			t.Resource = n
			if a.Partition == r.Scope.Partition && a.Region == r.Scope.Region && !strings.HasPrefix(name, "Create") {
				t.ResourceTags = r.resourceTags(nf.kind, a.Account, a.Name)
			}
			break
		}
		t.Resource = r.Scope.Build(account, nf.kind, n)
		if !strings.HasPrefix(name, "Create") {
			t.ResourceTags = r.resourceTags(nf.kind, account, n)
		}
		break
	}
	if fd := fields.ByName("role_arn"); fd != nil && strings.HasPrefix(name, "Create") {
		if role := msg.Get(fd).String(); role != "" && id.AuthBy != ByNone {
			t.Extra = append(t.Extra, Target{Action: auth.ActionPassRole, Resource: role})
		}
	}
	return t, nil
}

// resourceTags returns the tags on an existing resource, nil when there is
// none or it has none.
func (r *Resolver) resourceTags(kind, account, name string) map[string]string {
	st := r.State()
	var tags []*pb.Tag
	switch kind {
	case state.KindWorkloadConfig:
		if rec, err := st.WorkloadConfig(account, name); err == nil {
			tags = rec.GetConfig().GetTags()
		}
	case state.KindEndpoint:
		if ep, err := st.Endpoint(account, name); err == nil {
			tags = ep.GetTags()
		}
	case state.KindBenchmark, state.KindRecommendation:
		if j, err := st.Job(kind, account, name); err == nil {
			if j.Benchmark != nil {
				tags = j.Benchmark.GetJob().GetTags()
			} else {
				tags = j.Recommend.GetJob().GetTags()
			}
		}
	}
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.GetKey()] = t.GetValue()
	}
	return m
}

func tagsOf(l protoreflect.List) map[string]string {
	if l.Len() == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i < l.Len(); i++ {
		t := l.Get(i).Message().Interface().(*pb.Tag)
		m[t.GetKey()] = t.GetValue()
	}
	return m
}

// IAMARN builds an IAM ARN: arn:<partition>:iam::<account>:<kind>/<name>.
func (r *Resolver) IAMARN(account, kind, name string) string {
	return fmt.Sprintf("arn:%s:iam::%s:%s/%s", r.Scope.Partition, account, kind, name)
}

// PerfleetARN builds the ARN of a perfleet resource that is not SageMaker's
// or IAM's: arn:<partition>:perfleet:<region>:<account>:<resource>.
func (r *Resolver) PerfleetARN(account, resource string) string {
	return fmt.Sprintf("arn:%s:perfleet:%s:%s:%s", r.Scope.Partition, r.Scope.Region, account, resource)
}

func orAccount(a string, id *Identity) string {
	if a == "" {
		return id.Account
	}
	return a
}

func (r *Resolver) aclTarget(name string, req proto.Message, id *Identity) (Target, error) {
	t := Target{Action: "perfleet:" + name}
	st := r.State()
	switch m := req.(type) {
	case *pb.BootstrapRequest, *pb.WhoAmIRequest:
		t.Public = true
	case *pb.CreatePrincipalRequest:
		kind := "user"
		if m.GetType() == pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
			kind = "role"
			t.Action = auth.ActionCreateRole
		}
		t.Resource = r.IAMARN(orAccount(m.GetAccountId(), id), kind, m.GetName())
		t.RequestTags = map[string]string{}
		for _, tag := range m.GetTags() {
			t.RequestTags[tag.GetKey()] = tag.GetValue()
		}
	case *pb.GetPrincipalRequest:
		t.Resource = m.GetArn()
	case *pb.DeletePrincipalRequest:
		t.Resource = m.GetArn()
	case *pb.ListPrincipalsRequest:
		t.Resource = r.IAMARN(orAccount(m.GetAccountId(), id), "user", "*")
	case *pb.CreateTokenRequest:
		t.Resource = m.GetPrincipalArn()
	case *pb.ListTokensRequest:
		t.Resource = orValue(m.GetPrincipalArn(), r.IAMARN(id.Account, "user", "*"))
	case *pb.RevokeTokenRequest:
		if tok, err := st.Token(m.GetAccessorId()); err == nil {
			t.Resource = tok.GetToken().GetPrincipalArn()
		} else {
			t.Resource = r.IAMARN(id.Account, "user", "*")
		}
	case *pb.CreateAccessKeyRequest:
		t.Resource = m.GetPrincipalArn()
	case *pb.ListAccessKeysRequest:
		t.Resource = orValue(m.GetPrincipalArn(), r.IAMARN(id.Account, "user", "*"))
	case *pb.RevokeAccessKeyRequest:
		if k, err := st.AccessKey(m.GetAccessKeyId()); err == nil {
			t.Resource = k.GetKey().GetPrincipalArn()
		} else {
			t.Resource = r.IAMARN(id.Account, "user", "*")
		}
	case *pb.PutPolicyRequest:
		t.Resource = r.IAMARN(orAccount(m.GetAccountId(), id), "policy", m.GetName())
	case *pb.GetPolicyRequest:
		t.Resource = m.GetArn()
	case *pb.DeletePolicyRequest:
		t.Resource = m.GetArn()
	case *pb.ListPoliciesRequest:
		t.Resource = r.IAMARN(orAccount(m.GetAccountId(), id), "policy", "*")
	case *pb.AttachPolicyRequest:
		t.Resource = m.GetPrincipalArn()
	case *pb.DetachPolicyRequest:
		t.Resource = m.GetPrincipalArn()
	case *pb.LookupEventsRequest:
		t.Resource = r.PerfleetARN(orAccount(m.GetAccountId(), id), "audit-log")
	case *pb.PutSecretRequest:
		t.Resource = r.PerfleetARN(orAccount(m.GetAccountId(), id), "secret/"+m.GetName())
	case *pb.DeleteSecretRequest:
		t.Resource = r.PerfleetARN(orAccount(m.GetAccountId(), id), "secret/"+m.GetName())
	case *pb.ListSecretsRequest:
		t.Resource = r.PerfleetARN(orAccount(m.GetAccountId(), id), "secret/*")
	default:
		return Target{}, fmt.Errorf("%w: no authorization rule for perfleet:%s", ErrAccessDenied, name)
	}
	return t, nil
}

func orValue(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
