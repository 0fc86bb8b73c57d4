package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		name  string
		doc   string
		stmts int
		sids  []string
	}{
		{"statement object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, 1, []string{""}},
		{"statement array", `{"Version":"2012-10-17","Id":"p1","Statement":[
			{"Sid":"A1","Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:ListAIBenchmarkJobs"],"Resource":["arn:aws:sagemaker:*:111122223333:ai-benchmark-job/*"]},
			{"Sid":"D1","Effect":"Deny","NotAction":"sagemaker:*","NotResource":"arn:aws:sagemaker:us-east-1:111122223333:*"}]}`, 2, []string{"A1", "D1"}},
		{"version 2008", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${bucket}/*"}]}`, 1, []string{""}},
		{"other services and mixed case", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","secretsmanager:GetSecretValue","SageMaker:describeaibenchmarkjob","kms:*"],"Resource":"*"}]}`, 1, []string{""}},
		{"all condition value types", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
			"Bool":{"aws:SecureTransport":true},
			"NumericLessThan":{"perfleet:Replicas":10,"sagemaker:MaxConcurrency":["1.5","2e3"]},
			"DateGreaterThan":{"aws:CurrentTime":["2024-01-01T00:00:00Z","2024-01-01",1700000000,"2024-01-01T00:00:00.5+02:00"]},
			"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32","192.168.1.1"]},
			"ArnLike":{"aws:SourceArn":"arn:aws:sagemaker:*:*:ai-benchmark-job/*","aws:PrincipalArn":"${aws:PrincipalArn}"},
			"Null":{"aws:ResourceTag/team":"false"},
			"ForAllValues:StringEquals":{"aws:TagKeys":["team","owner"]},
			"ForAnyValue:StringLikeIfExists":{"aws:RequestTag/Cost Center":"a*"},
			"StringEquals":{"aws:PrincipalTag/team":"${aws:PrincipalTag/team, 'none'}","aws:RequestedRegion":"us-east-1"}}}]}`, 1, []string{""}},
		{"resource policy without Resource", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:user/alice"]},"Action":"perfleet:PassRole"},
			{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"*"},
			{"Effect":"Allow","Principal":"*","Action":"sagemaker:List*","Resource":"*"}]}`, 3, []string{"", "", ""}},
		{"admin document", AdministratorAccessDocument, 1, []string{"AdministratorAccess"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.NumStatements() != tc.stmts {
				t.Errorf("NumStatements = %d, want %d", p.NumStatements(), tc.stmts)
			}
			if !slices.Equal(p.Sids(), tc.sids) {
				t.Errorf("Sids = %q, want %q", p.Sids(), tc.sids)
			}
			if string(p.Document()) != tc.doc {
				t.Errorf("Document() does not round-trip")
			}
		})
	}
	p := MustParse(`{"Version":"2008-10-17","Id":"x","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`)
	if p.Version() != Version2008 || p.ID() != "x" {
		t.Errorf("Version/ID = %q/%q", p.Version(), p.ID())
	}
}

func TestParseErrors(t *testing.T) {
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	cond := func(c string) string {
		return stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + c + `}`)
	}
	cases := []struct {
		name string
		doc  string
		want string // the full error, or a substring when it starts with "~"
	}{
		{"effect lower case", stmt(`{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"allow","Action":"*","Resource":"*"}`),
			`Statement[1].Effect: must be Allow or Deny, got "allow"`},
		{"effect missing", stmt(`{"Action":"*","Resource":"*"}`), `Statement[0].Effect: required: Allow or Deny`},
		{"effect not a string", stmt(`{"Effect":true,"Action":"*","Resource":"*"}`), `Statement[0].Effect: must be Allow or Deny, got true`},
		{"unknown top-level key", `{"Version":"2012-10-17","Foo":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `unknown key "Foo"`},
		{"top-level key case", `{"version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `~unknown key "version" (element names are case-sensitive; did you mean "Version"?)`},
		{"unknown statement key", stmt(`{"Effect":"Allow","Actions":"*","Resource":"*"}`), `~Statement[0]: unknown key "Actions"`},
		{"statement object path", `{"Version":"2012-10-17","Statement":{"Effect":"Alow","Action":"*","Resource":"*"}}`, `Statement.Effect: must be Allow or Deny, got "Alow"`},
		{"action and notaction", stmt(`{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}`), `Statement[0]: has both Action and NotAction; use one`},
		{"no action", stmt(`{"Effect":"Allow","Resource":"*"}`), `Statement[0]: must have Action or NotAction`},
		{"resource and notresource", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}`), `Statement[0]: has both Resource and NotResource; use one`},
		{"no resource", stmt(`{"Effect":"Allow","Action":"*"}`), `Statement[0]: must have Resource or NotResource`},
		{"principal and notprincipal", stmt(`{"Effect":"Deny","Principal":"*","NotPrincipal":"*","Action":"*"}`), `Statement[0]: has both Principal and NotPrincipal; use one`},
		{"notprincipal with allow", stmt(`{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"*"}`), `Statement[0].NotPrincipal: may only be used with Effect Deny`},
		{"principal string", stmt(`{"Effect":"Allow","Principal":"alice","Action":"*"}`), `Statement[0].Principal: must be "*" or {"AWS": …}, got "alice"`},
		{"principal wildcard arn", stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"*"}`), `~Statement[0].Principal.AWS[0]: "arn:aws:iam::111122223333:user/*" must be`},
		{"principal service", stmt(`{"Effect":"Allow","Principal":{"Service":"x"},"Action":"*"}`), `~Statement[0].Principal: unknown key "Service"`},
		{"unknown sagemaker action", stmt(`{"Effect":"Allow","Action":["sagemaker:CreateAIBenchmarkJobs"],"Resource":"*"}`), `Statement[0].Action[0]: unknown action "sagemaker:CreateAIBenchmarkJobs"`},
		{"unknown perfleet action", stmt(`{"Effect":"Allow","NotAction":["s3:GetObject","perfleet:Pass"],"Resource":"*"}`), `Statement[0].NotAction[1]: unknown action "perfleet:Pass"`},
		{"malformed action", stmt(`{"Effect":"Allow","Action":"sagemaker","Resource":"*"}`), `~Statement[0].Action[0]: action "sagemaker" must be "*" or service:Action`},
		{"empty action list", stmt(`{"Effect":"Allow","Action":[],"Resource":"*"}`), `Statement[0].Action: must not be empty`},
		{"action not a string", stmt(`{"Effect":"Allow","Action":[1],"Resource":"*"}`), `Statement[0].Action[0]: must be a string`},
		{"resource not an arn", stmt(`{"Effect":"Allow","Action":"*","Resource":"job/a"}`), `~Statement[0].Resource[0]: resource "job/a" must be "*" or an ARN`},
		{"resource short arn", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3"}`), `~resource "arn:aws:s3" must be "*" or an ARN`},
		{"unterminated variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${aws:username"}`), `~Statement[0].Resource[0]: unterminated policy variable`},
		{"unknown variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${aws:nope}"}`), `~policy variable ${aws:nope}: unknown condition key "aws:nope"`},
		{"multi-valued variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${aws:TagKeys}"}`), `~"aws:TagKeys" is multi-valued`},
		{"bad default", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${aws:username, none}"}`), `~the default value must be in single quotes`},
		{"unknown operator", cond(`{"StringEq":{"aws:SourceAccount":"1"}}`), `Statement[0].Condition: unknown condition operator "StringEq"`},
		{"operator case", cond(`{"stringequals":{"aws:SourceAccount":"1"}}`), `~unknown condition operator "stringequals" (operator names are case-sensitive; did you mean "StringEquals"?)`},
		{"unknown set prefix", cond(`{"ForSomeValues:StringEquals":{"aws:TagKeys":"a"}}`), `~unknown condition operator "ForSomeValues:StringEquals"`},
		{"null with prefix", cond(`{"ForAnyValue:Null":{"aws:TagKeys":"true"}}`), `~Null takes neither`},
		{"null if exists", cond(`{"NullIfExists":{"aws:TagKeys":"true"}}`), `~Null takes neither`},
		{"unknown condition key", cond(`{"StringEquals":{"aws:Foo":"x"}}`), `Statement[0].Condition.StringEquals.aws:Foo: unknown condition key "aws:Foo"`},
		{"other service key", cond(`{"StringEquals":{"s3:prefix":"x"}}`), `~unknown condition key "s3:prefix"`},
		{"empty tag key", cond(`{"StringEquals":{"aws:ResourceTag/":"x"}}`), `~tag key "" must be 1-128`},
		{"tag key wildcard", cond(`{"StringEquals":{"aws:ResourceTag/te*":"x"}}`), `~tag key "te*" must be`},
		{"empty service key", cond(`{"StringEquals":{"sagemaker:":"x"}}`), `~service condition key "sagemaker:" has an empty or invalid name`},
		{"empty operator block", cond(`{"StringEquals":{}}`), `Statement[0].Condition.StringEquals: must name at least one condition key`},
		{"condition not object", cond(`["StringEquals"]`), `Statement[0].Condition: must be an object of condition operators`},
		{"null value", cond(`{"StringEquals":{"aws:SourceAccount":null}}`), `~aws:SourceAccount: must be a string, number or boolean, or a non-empty array of them`},
		{"empty value array", cond(`{"StringEquals":{"aws:SourceAccount":[]}}`), `~must be a string, number or boolean, or a non-empty array`},
		{"object value", cond(`{"StringEquals":{"aws:SourceAccount":{"a":1}}}`), `~must be a string, number or boolean`},
		{"bad number", cond(`{"NumericLessThan":{"perfleet:Replicas":"ten"}}`), `Statement[0].Condition.NumericLessThan.perfleet:Replicas: value "ten" must be a number`},
		{"hex number", cond(`{"NumericLessThan":{"perfleet:Replicas":"0x10"}}`), `~value "0x10" must be a number`},
		{"bad date", cond(`{"DateLessThan":{"aws:CurrentTime":["2024-01-01T00:00:00Z","yesterday"]}}`), `Statement[0].Condition.DateLessThan.aws:CurrentTime[1]: value "yesterday" must be an RFC 3339 date or epoch seconds`},
		{"bad bool", cond(`{"Bool":{"aws:SecureTransport":"yes"}}`), `~value "yes" must be true or false`},
		{"bad null", cond(`{"Null":{"aws:SourceIp":"1"}}`), `~value "1" must be true or false`},
		{"bad ip", cond(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), `~value "10.0.0.0/33" must be an IP address or CIDR block`},
		{"bad arn", cond(`{"ArnLike":{"aws:SourceArn":"arn:aws:sagemaker:*"}}`), `~value "arn:aws:sagemaker:*" must be an ARN with six colon-separated components`},
		{"variable in string value", cond(`{"StringEquals":{"aws:SourceAccount":"${aws:Nope}"}}`), `~unknown condition key "aws:Nope"`},
		{"version missing", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `Version: required; use "2012-10-17"`},
		{"version wrong", `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `Version: must be "2012-10-17" or "2008-10-17", got "2012-10-18"`},
		{"statement missing", `{"Version":"2012-10-17"}`, `Statement: required`},
		{"statement empty", `{"Version":"2012-10-17","Statement":[]}`, `Statement: must contain at least one statement`},
		{"statement string", `{"Version":"2012-10-17","Statement":"x"}`, `Statement: must be an object or an array of objects`},
		{"statement element not object", stmt(`1`), `Statement[0]: must be a JSON object`},
		{"duplicate key", stmt(`{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}`), `Statement[0]: duplicate key "Effect"`},
		{"duplicate condition key", cond(`{"StringEquals":{"aws:SourceAccount":"1","aws:SourceAccount":"2"}}`), `Statement[0].Condition.StringEquals: duplicate key "aws:SourceAccount"`},
		{"duplicate sid", stmt(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}`), `Statement[1].Sid: duplicate Sid "A" (also Statement[0])`},
		{"bad sid", stmt(`{"Sid":"allow-all","Effect":"Allow","Action":"*","Resource":"*"}`), `Statement[0].Sid: must contain only ASCII letters and digits, got "allow-all"`},
		{"id not string", `{"Version":"2012-10-17","Id":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `Id: must be a string`},
		{"not json", `{"Version":`, `~invalid JSON`},
		{"not an object", `[1]`, `policy document must be a JSON object`},
		{"trailing data", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`, `policy document has data after the JSON value`},
		{"too large", `{"Version":"2012-10-17","Id":"` + strings.Repeat("x", MaxPolicySize) + `"}`, `~the limit is 131072`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse succeeded (%d statements), want error %q", p.NumStatements(), tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParseError", err)
			}
			if sub, ok := strings.CutPrefix(tc.want, "~"); ok {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"allow","Action":"*","Resource":"*"},
		{"Effect":"Allow","Action":"sagemaker:Nope","Resource":"*","Condition":{"StringEq":{"aws:SourceAccount":"1"}}}]}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`Statement[0].Effect: must be Allow or Deny, got "allow"`,
		`Statement[1].Action[0]: unknown action "sagemaker:Nope"`,
		`Statement[1].Condition: unknown condition operator "StringEq"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Field != "Statement[0].Effect" {
		t.Errorf("first ParseError = %+v", pe)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse(`{}`)
}

func TestActionLists(t *testing.T) {
	if n := len(SageMakerActions()); n != 14 {
		t.Errorf("SageMakerActions: %d, want 14", n)
	}
	seen := map[string]bool{}
	for _, a := range Actions() {
		if seen[strings.ToLower(a)] {
			t.Errorf("duplicate action %s", a)
		}
		seen[strings.ToLower(a)] = true
		if checkAction(a) != "" {
			t.Errorf("action %s does not validate: %s", a, checkAction(a))
		}
	}
	for _, a := range []string{ActionTagResource, ActionUntagResource, ActionListTags, ActionPassRole, ActionCreatePrincipal, ActionPutPolicy} {
		if !IsKnownAction(a) || !IsKnownAction(strings.ToUpper(a)) {
			t.Errorf("IsKnownAction(%s) = false", a)
		}
	}
	if IsKnownAction("sagemaker:CreateTrainingJob") {
		t.Error("IsKnownAction(sagemaker:CreateTrainingJob) = true")
	}
	if len(TagActions())+len(ExtensionActions())+len(AdminActions())+14 != len(Actions()) {
		t.Error("Actions is not the union of the lists")
	}
	if ops := ConditionOperators(); len(ops) != 26 || !slices.IsSorted(ops) {
		t.Errorf("ConditionOperators = %v", ops)
	}
}
