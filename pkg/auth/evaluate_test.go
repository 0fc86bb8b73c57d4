package auth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func named(name, doc string) *Policy {
	p := MustParse(doc)
	p.Name = name
	return p
}

func stmts(s ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(s, ",") + `]}`
}

func TestDenyPrecedence(t *testing.T) {
	allowAll := named("allow-all", AdministratorAccessDocument)
	denyStop := named("guard", stmts(
		`{"Sid":"Unrelated","Effect":"Deny","Action":"perfleet:*","Resource":"*"}`,
		`{"Sid":"NoStop","Effect":"Deny","Action":"sagemaker:Stop*","Resource":"*"}`))
	allowDescribe := named("reader", stmts(`{"Sid":"Read","Effect":"Allow","Action":"sagemaker:Describe*","Resource":"*"}`))

	req := baseRequest()
	req.Action = ActionStopAIBenchmarkJob

	cases := []struct {
		name     string
		action   string
		policies []*Policy
		want     Outcome
		ref      string
	}{
		{"deny after allow", ActionStopAIBenchmarkJob, []*Policy{allowAll, denyStop}, ExplicitDeny, `policy "guard" Statement[1] (Sid "NoStop")`},
		{"deny before allow", ActionStopAIBenchmarkJob, []*Policy{denyStop, allowAll}, ExplicitDeny, `policy "guard" Statement[1] (Sid "NoStop")`},
		{"deny only", ActionStopAIBenchmarkJob, []*Policy{denyStop}, ExplicitDeny, `policy "guard" Statement[1] (Sid "NoStop")`},
		{"allow, deny does not match", ActionDescribeAIBenchmarkJob, []*Policy{denyStop, allowDescribe, allowAll}, Allow, `policy "reader" Statement[0] (Sid "Read")`},
		{"first allow reported", ActionDescribeAIBenchmarkJob, []*Policy{allowAll, allowDescribe}, Allow, `policy "allow-all" Statement[0] (Sid "AdministratorAccess")`},
		{"nothing allows", ActionCreateAIBenchmarkJob, []*Policy{denyStop, allowDescribe}, ImplicitDeny, ""},
		{"no policies", ActionCreateAIBenchmarkJob, nil, ImplicitDeny, ""},
		{"nil policies skipped", ActionDescribeAIBenchmarkJob, []*Policy{nil, allowDescribe, nil}, Allow, `policy "reader" Statement[0] (Sid "Read")`},
		{"empty action never allowed", "", []*Policy{allowAll}, ImplicitDeny, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.Action = tc.action
			d := Evaluate(r, tc.policies...)
			if d.Effect != tc.want {
				t.Fatalf("Effect = %v, want %v", d.Effect, tc.want)
			}
			if tc.ref == "" {
				if d.MatchedStatement != nil {
					t.Errorf("MatchedStatement = %v, want nil", d.MatchedStatement)
				}
				return
			}
			if d.MatchedStatement == nil || d.MatchedStatement.String() != tc.ref {
				t.Errorf("MatchedStatement = %v, want %s", d.MatchedStatement, tc.ref)
			}
			if d.Allowed() != (tc.want == Allow) {
				t.Errorf("Allowed() = %v", d.Allowed())
			}
		})
	}
}

func TestDecisionStrings(t *testing.T) {
	if s := (Decision{}).String(); s != "ImplicitDeny: no statement allows the request" {
		t.Errorf("zero Decision = %q", s)
	}
	d := Decision{Effect: ExplicitDeny, MatchedStatement: &StatementRef{Policy: "p", Index: 2}}
	if s := d.String(); s != `ExplicitDeny by policy "p" Statement[2]` {
		t.Errorf("Decision = %q", s)
	}
	if Allow.String() != "Allow" || ExplicitDeny.String() != "ExplicitDeny" || ImplicitDeny.String() != "ImplicitDeny" || Outcome(9).String() != "Outcome(9)" {
		t.Error("Outcome.String")
	}
}

func TestActionMatching(t *testing.T) {
	cases := []struct {
		pattern string
		action  string
		want    bool
	}{
		{"*", ActionCreateAIBenchmarkJob, true},
		{"*", ActionPassRole, true},
		{"sagemaker:*", ActionCreateAIBenchmarkJob, true},
		{"sagemaker:*", ActionPassRole, false},
		{"sagemaker:Describe*", ActionDescribeAIWorkloadConfig, true},
		{"sagemaker:Describe*", ActionDeleteAIWorkloadConfig, false},
		{"SageMaker:describeaibenchmarkjob", ActionDescribeAIBenchmarkJob, true},
		{"sagemaker:DescribeAIBenchmarkJob", "SAGEMAKER:DESCRIBEAIBENCHMARKJOB", true},
		{"sagemaker:?topAIBenchmarkJob", ActionStopAIBenchmarkJob, true},
		{"sagemaker:?topAIBenchmarkJob", ActionStopAIRecommendationJob, false},
		{"sagemaker:*AIBenchmarkJob", ActionCreateAIBenchmarkJob, true},
		{"sagemaker:*AIBenchmarkJob", ActionListAIBenchmarkJobs, false},
		{"sagemaker:*Job*", ActionListAIBenchmarkJobs, true},
		{"perfleet:*Role", ActionPassRole, true},
		{"perfleet:*Role", ActionListRoles, false},
		{"sagemaker:CreateAIBenchmarkJob", "sagemaker:CreateAIBenchmarkJobX", false},
		{"s3:GetObject", "s3:getobject", true},
	}
	for _, tc := range cases {
		p := MustParse(stmts(fmt.Sprintf(`{"Effect":"Allow","Action":%q,"Resource":"*"}`, tc.pattern)))
		req := baseRequest()
		req.Action = tc.action
		if got := Evaluate(req, p).Allowed(); got != tc.want {
			t.Errorf("Action %q vs %q: %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
	}
}

func TestNotAction(t *testing.T) {
	// Everything but the admin API.
	p := MustParse(stmts(`{"Effect":"Allow","NotAction":["perfleet:*","sagemaker:Delete*"],"Resource":"*"}`))
	for action, want := range map[string]bool{
		ActionCreateAIBenchmarkJob:   true,
		ActionTagResource:            true,
		ActionDeleteAIBenchmarkJob:   false,
		ActionPassRole:               false,
		"PERFLEET:CREATEPRINCIPAL":   false,
		"s3:GetObject":               true,
		ActionListAIWorkloadConfigs:  true,
		ActionDescribeAgent:          false,
		ActionGetAIBenchmarkJobLog:   true,
		ActionDeleteAIWorkloadConfig: false,
	} {
		req := baseRequest()
		req.Action = action
		if got := Evaluate(req, p).Allowed(); got != want {
			t.Errorf("NotAction, %s: %v, want %v", action, got, want)
		}
	}
	// A Deny with NotAction denies everything else.
	deny := MustParse(stmts(`{"Effect":"Deny","NotAction":"sagemaker:Describe*","Resource":"*"}`, `{"Effect":"Allow","Action":"*","Resource":"*"}`))
	req := baseRequest()
	if d := Evaluate(req, deny); d.Effect != Allow {
		t.Errorf("Describe: %v", d)
	}
	req.Action = ActionCreateAIBenchmarkJob
	if d := Evaluate(req, deny); d.Effect != ExplicitDeny || d.MatchedStatement.Index != 0 {
		t.Errorf("Create: %v", d)
	}
}

func TestResourceMatching(t *testing.T) {
	cases := []struct {
		pattern  string
		resource string
		want     bool
	}{
		{"*", jobArn, true},
		{"*", "", true},
		{"arn:*", "", false},
		{"arn:aws:sagemaker:*", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/*", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/*", "arn:aws:sagemaker:us-east-1:111122223333:ai-recommendation-job/j1", false},
		{"arn:aws:sagemaker:*:111122223333:*", jobArn, true},
		{"arn:aws:sagemaker:*:444455556666:*", jobArn, false},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-*-job/*", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/j?", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/?", jobArn, false},
		{"arn:aws:sagemaker:us-east-1:111122223333:AI-benchmark-job/*", jobArn, false},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/J1", jobArn, false},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/j1", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/j1", jobArn + "0", false},
		{"arn:aws:s*:*:*:*/j1", jobArn, true},
		{"arn:*1", jobArn, true},
		{"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/a/*", "arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/a/b/c", true},
	}
	for _, tc := range cases {
		p := MustParse(stmts(fmt.Sprintf(`{"Effect":"Allow","Action":"*","Resource":%q}`, tc.pattern)))
		req := baseRequest()
		req.Resource = tc.resource
		if got := Evaluate(req, p).Allowed(); got != tc.want {
			t.Errorf("Resource %q vs %q: %v, want %v", tc.pattern, tc.resource, got, tc.want)
		}
	}
}

func TestNotResource(t *testing.T) {
	p := MustParse(stmts(`{"Effect":"Allow","Action":"*","NotResource":["arn:aws:sagemaker:*:*:ai-recommendation-job/*","arn:aws:sagemaker:*:*:*/prod-*"]}`))
	for res, want := range map[string]bool{
		jobArn: true,
		"arn:aws:sagemaker:us-east-1:111122223333:ai-recommendation-job/r":        false,
		"arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/prod-1":        false,
		"arn:aws:sagemaker:us-east-1:111122223333:ai-workload-config/staging-cfg": true,
		"": true,
	} {
		req := baseRequest()
		req.Resource = res
		if got := Evaluate(req, p).Allowed(); got != want {
			t.Errorf("NotResource, %q: %v, want %v", res, got, want)
		}
	}
	deny := MustParse(stmts(`{"Effect":"Deny","Action":"*","NotResource":"arn:aws:sagemaker:*:${aws:PrincipalAccount}:*"}`, `{"Effect":"Allow","Action":"*","Resource":"*"}`))
	req := baseRequest()
	if d := Evaluate(req, deny); d.Effect != Allow {
		t.Errorf("own account: %v", d)
	}
	req.Resource = "arn:aws:sagemaker:us-east-1:444455556666:ai-benchmark-job/j1"
	if d := Evaluate(req, deny); d.Effect != ExplicitDeny {
		t.Errorf("other account: %v", d)
	}
}

func TestPolicyVariables(t *testing.T) {
	type tc struct {
		name string
		doc  string
		req  func(*Request)
		want Outcome
	}
	allowRes := func(res string) string {
		return stmts(fmt.Sprintf(`{"Effect":"Allow","Action":"*","Resource":%q}`, res))
	}
	allowCond := func(op, key, val string) string {
		return stmts(fmt.Sprintf(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{%q:{%q:%q}}}`, op, key, val))
	}
	withPrincipalTag := func(k, v string) func(*Request) {
		return func(r *Request) { r.Principal.Tags = map[string]string{k: v} }
	}
	withJob := func(name string) func(*Request) {
		return func(r *Request) { r.Resource = "arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/" + name }
	}
	both := func(fs ...func(*Request)) func(*Request) {
		return func(r *Request) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	cases := []tc{
		{"PrincipalAccount in resource", allowRes("arn:aws:sagemaker:*:${aws:PrincipalAccount}:*"), nil, Allow},
		{"PrincipalAccount in resource, other account", allowRes("arn:aws:sagemaker:*:${aws:PrincipalAccount}:*"),
			func(r *Request) { r.Principal.Account = otherAcc }, ImplicitDeny},
		{"case-insensitive variable name", allowRes("arn:aws:sagemaker:*:${AWS:principalaccount}:*"), nil, Allow},
		{"username in resource", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:username}-*"), withJob("alice-1"), Allow},
		{"username in resource, other user", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:username}-*"), withJob("bob-1"), ImplicitDeny},
		{"PrincipalTag in resource", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team}/*"),
			both(withPrincipalTag("team", "a"), withJob("a/j1")), Allow},
		{"PrincipalTag missing: statement does not match", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team}/*"),
			withJob("a/j1"), ImplicitDeny},
		{"PrincipalTag missing with default", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team, 'shared'}/*"),
			withJob("shared/j1"), Allow},
		{"default unused when present", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team,'shared'}/*"),
			both(withPrincipalTag("team", "a"), withJob("shared/j1")), ImplicitDeny},
		{"substituted star is literal", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "*"), withJob("j1")), ImplicitDeny},
		{"substituted star matches a literal star", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "*"), withJob("*")), Allow},
		{"${*} is a literal star", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${*}"), withJob("j1"), ImplicitDeny},
		{"${*} matches a star", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${*}"), withJob("*"), Allow},
		{"${?} and ${$}", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${?}${$}"), withJob("?$"), Allow},
		{"version 2008 keeps variables literal", `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:sagemaker:*:${aws:PrincipalAccount}:*"}}`,
			nil, ImplicitDeny},
		{"version 2008 literal text matches", `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:username}"}}`,
			withJob("${aws:username}"), Allow},
		{"ResourceTag equals PrincipalTag", allowCond("StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "a"), resTag("team", "a")), Allow},
		{"ResourceTag differs from PrincipalTag", allowCond("StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "a"), resTag("team", "b")), ImplicitDeny},
		{"PrincipalArn in ArnEquals", allowCond("ArnEquals", "aws:SourceArn", "${aws:PrincipalArn}"), sourceArn(aliceArn), Allow},
		{"PrincipalAccount in ArnLike", allowCond("ArnLike", "aws:SourceArn", "arn:aws:sagemaker:*:${aws:PrincipalAccount}:*"), sourceArn(jobArn), Allow},
		{"variable in StringLike is literal", allowCond("StringLike", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "a*"), resTag("team", "abc")), ImplicitDeny},
		{"variable in StringLike with wildcard around", allowCond("StringLike", "aws:ResourceTag/team", "${aws:PrincipalTag/team}-*"),
			both(withPrincipalTag("team", "a"), resTag("team", "a-1")), Allow},
		{"variable in IgnoreCase", allowCond("StringEqualsIgnoreCase", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			both(withPrincipalTag("team", "A"), resTag("team", "a")), Allow},
		{"unresolvable variable under negated operator: no match", allowCond("StringNotEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			resTag("team", "a"), ImplicitDeny},
		{"unresolvable variable under IfExists on missing key: no match", allowCond("StringEqualsIfExists", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			nil, ImplicitDeny},
		{"variable with two tag values: unresolvable", allowCond("StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}"),
			func(r *Request) {
				r.Principal.Tags = map[string]string{"team": "a", "TEAM": "a"}
				r.ResourceTags = map[string]string{"team": "a"}
			}, ImplicitDeny},
		{"unresolvable variable in a Deny: the Deny does not apply", stmts(
			`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}`,
			`{"Effect":"Allow","Action":"*","Resource":"*"}`), resTag("team", "a"), Allow},
		{"resolvable Deny applies", stmts(
			`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}`,
			`{"Effect":"Allow","Action":"*","Resource":"*"}`), both(resTag("team", "a"), withPrincipalTag("team", "b")), ExplicitDeny},
		{"unresolvable variable in any resource entry: no match", stmts(
			`{"Effect":"Allow","Action":"*","Resource":["*","arn:aws:sagemaker:*:*:ai-benchmark-job/${aws:PrincipalTag/team}"]}`), nil, ImplicitDeny},
		{"SourceAccount variable", allowCond("StringEquals", "aws:PrincipalAccount", "${aws:SourceAccount}"),
			func(r *Request) { r.SourceAccount = acct }, Allow},
		{"service key variable", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${perfleet:JobPrefix}*"),
			both(ctxKey("perfleet:JobPrefix", "j"), withJob("j1")), Allow},
		{"multi-valued service key variable: unresolvable", allowRes("arn:aws:sagemaker:*:*:ai-benchmark-job/${perfleet:JobPrefix}*"),
			both(ctxKey("perfleet:JobPrefix", "j", "k"), withJob("j1")), ImplicitDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := MustParse(c.doc)
			req := baseRequest()
			if c.req != nil {
				c.req(&req)
			}
			if d := Evaluate(req, p); d.Effect != c.want {
				t.Errorf("Effect = %v, want %v", d, c.want)
			}
		})
	}
}

func TestPrincipalElement(t *testing.T) {
	bob := Principal{ARN: "arn:aws:iam::444455556666:user/bob", Account: otherAcc, Username: "bob"}
	cases := []struct {
		name string
		doc  string
		who  Principal
		want Outcome
	}{
		{"star", stmts(`{"Effect":"Allow","Principal":"*","Action":"*"}`), bob, Allow},
		{"star anonymous", stmts(`{"Effect":"Allow","Principal":"*","Action":"*"}`), Principal{}, Allow},
		{"AWS star", stmts(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*"}`), Principal{}, Allow},
		{"account id", stmts(`{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"*"}`), bob, Allow},
		{"account id other", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"*"}`), bob, ImplicitDeny},
		{"account id anonymous", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"*"}`), Principal{}, ImplicitDeny},
		{"root arn", stmts(`{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":"*"}`), bob, Allow},
		{"principal arn", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"*","Resource":"*"}`), bob, Allow},
		{"principal arn other", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/bobby"},"Action":"*"}`), bob, ImplicitDeny},
		{"NotPrincipal deny others", stmts(`{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"*"}`, `{"Effect":"Allow","Action":"*","Resource":"*"}`), bob, ExplicitDeny},
		{"NotPrincipal spares listed", stmts(`{"Effect":"Deny","NotPrincipal":{"AWS":"444455556666"},"Action":"*"}`, `{"Effect":"Allow","Action":"*","Resource":"*"}`), bob, Allow},
		{"no principal element applies to anyone", stmts(`{"Effect":"Allow","Action":"*","Resource":"*"}`), bob, Allow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest()
			req.Principal = tc.who
			if d := Evaluate(req, MustParse(tc.doc)); d.Effect != tc.want {
				t.Errorf("Effect = %v, want %v", d, tc.want)
			}
		})
	}
}

// TestTagAuthorization is the tag-on-create pattern from the IAM docs:
// allow tagging only with the caller's team and only known keys, and deny
// changing the team tag of someone else's resource.
func TestTagAuthorization(t *testing.T) {
	p := named("tagging", stmts(
		`{"Sid":"CreateWithTeam","Effect":"Allow","Action":["sagemaker:CreateAIBenchmarkJob","sagemaker:TagResource"],"Resource":"*",
		  "Condition":{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/team}"},"ForAllValues:StringEquals":{"aws:TagKeys":["team","owner"]}}}`,
		`{"Sid":"UntagOwn","Effect":"Allow","Action":"sagemaker:UntagResource","Resource":"*",
		  "Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"},"ForAllValues:StringNotEquals":{"aws:TagKeys":"team"}}}`,
		`{"Sid":"NoForeignRetag","Effect":"Deny","Action":"sagemaker:TagResource","Resource":"*",
		  "Condition":{"StringNotEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"},"Null":{"aws:ResourceTag/team":"false"}}}`))
	mk := func(action string, resTags, reqTags map[string]string, keys []string) Request {
		r := baseRequest()
		r.Action = action
		r.Principal.Tags = map[string]string{"team": "a"}
		r.ResourceTags, r.RequestTags, r.TagKeys = resTags, reqTags, keys
		return r
	}
	cases := []struct {
		name string
		req  Request
		want Outcome
	}{
		{"create with own team", mk(ActionCreateAIBenchmarkJob, nil, map[string]string{"team": "a", "owner": "alice"}, nil), Allow},
		{"create with other team", mk(ActionCreateAIBenchmarkJob, nil, map[string]string{"team": "b"}, nil), ImplicitDeny},
		{"create with extra key", mk(ActionCreateAIBenchmarkJob, nil, map[string]string{"team": "a", "cost": "1"}, nil), ImplicitDeny},
		{"create without tags", mk(ActionCreateAIBenchmarkJob, nil, nil, nil), ImplicitDeny},
		{"tag own resource", mk(ActionTagResource, map[string]string{"team": "a"}, map[string]string{"team": "a"}, nil), Allow},
		{"retag foreign resource", mk(ActionTagResource, map[string]string{"team": "b"}, map[string]string{"team": "a"}, nil), ExplicitDeny},
		{"untag owner from own", mk(ActionUntagResource, map[string]string{"team": "a"}, nil, []string{"owner"}), Allow},
		{"untag team from own", mk(ActionUntagResource, map[string]string{"team": "a"}, nil, []string{"team"}), ImplicitDeny},
		{"untag from foreign", mk(ActionUntagResource, map[string]string{"team": "b"}, nil, []string{"owner"}), ImplicitDeny},
	}
	for _, tc := range cases {
		if d := Evaluate(tc.req, p); d.Effect != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, d, tc.want)
		}
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	p := named("p", stmts(`{"Effect":"Allow","Action":"sagemaker:*","Resource":"arn:aws:sagemaker:*:${aws:PrincipalAccount}:*",
		"Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}`))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				req := baseRequest()
				team := fmt.Sprint((i + j) % 2)
				req.Principal.Tags = map[string]string{"team": "0"}
				req.ResourceTags = map[string]string{"team": team}
				if got := Evaluate(req, p).Allowed(); got != (team == "0") {
					t.Errorf("goroutine %d: %v", i, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
