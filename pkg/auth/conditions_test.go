package auth

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	acct     = "111122223333"
	otherAcc = "444455556666"
	jobArn   = "arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/j1"
	aliceArn = "arn:aws:iam::111122223333:user/alice"
)

// baseRequest is a request with no optional keys set.
func baseRequest() Request {
	return Request{
		Action:      ActionDescribeAIBenchmarkJob,
		Resource:    jobArn,
		Principal:   Principal{ARN: aliceArn, Account: acct, Username: "alice"},
		CurrentTime: testNow,
	}
}

// condPolicy returns a policy allowing everything under one condition.
func condPolicy(t *testing.T, op, key string, values any) *Policy {
	t.Helper()
	doc, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": map[string]any{
			"Effect": "Allow", "Action": "*", "Resource": "*",
			"Condition": map[string]any{op: map[string]any{key: values}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse(%s): %v", doc, err)
	}
	return p
}

type condCase struct {
	name   string
	op     string
	key    string
	values any
	req    func(*Request)
	want   bool
}

func runCondCases(t *testing.T, cases []condCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := condPolicy(t, tc.op, tc.key, tc.values)
			req := baseRequest()
			if tc.req != nil {
				tc.req(&req)
			}
			got := Evaluate(req, p).Allowed()
			if got != tc.want {
				t.Errorf("%s %s %v on the request: %v, want %v", tc.op, tc.key, tc.values, got, tc.want)
			}
		})
	}
}

func resTag(k, v string) func(*Request) {
	return func(r *Request) { r.ResourceTags = map[string]string{k: v} }
}

func ctxKey(k string, v ...string) func(*Request) {
	return func(r *Request) { r.Context = map[string][]string{k: v} }
}

func tagKeys(keys ...string) func(*Request) {
	return func(r *Request) { r.TagKeys = keys }
}

func sourceIP(s string) func(*Request) {
	return func(r *Request) { r.SourceIP = netip.MustParseAddr(s) }
}

func sourceArn(s string) func(*Request) {
	return func(r *Request) { r.SourceArn = s }
}

const team = "aws:ResourceTag/team"

func TestStringOperators(t *testing.T) {
	runCondCases(t, []condCase{
		{"StringEquals match", "StringEquals", team, "a", resTag("team", "a"), true},
		{"StringEquals case-sensitive", "StringEquals", team, "a", resTag("team", "A"), false},
		{"StringEquals mismatch", "StringEquals", team, "a", resTag("team", "b"), false},
		{"StringEquals missing", "StringEquals", team, "a", nil, false},
		{"StringEquals values ORed", "StringEquals", team, []string{"x", "a"}, resTag("team", "a"), true},
		{"StringEquals star is literal", "StringEquals", team, "*", resTag("team", "a"), false},
		{"StringEquals empty tag value", "StringEquals", team, "", resTag("team", ""), true},
		{"StringNotEquals mismatch", "StringNotEquals", team, "a", resTag("team", "b"), true},
		{"StringNotEquals match", "StringNotEquals", team, "a", resTag("team", "a"), false},
		{"StringNotEquals any of values", "StringNotEquals", team, []string{"x", "a"}, resTag("team", "a"), false},
		{"StringNotEquals missing", "StringNotEquals", team, "a", nil, true},
		{"StringEqualsIgnoreCase match", "StringEqualsIgnoreCase", team, "a", resTag("team", "A"), true},
		{"StringEqualsIgnoreCase mismatch", "StringEqualsIgnoreCase", team, "a", resTag("team", "b"), false},
		{"StringEqualsIgnoreCase missing", "StringEqualsIgnoreCase", team, "a", nil, false},
		{"StringNotEqualsIgnoreCase match", "StringNotEqualsIgnoreCase", team, "a", resTag("team", "A"), false},
		{"StringNotEqualsIgnoreCase mismatch", "StringNotEqualsIgnoreCase", team, "a", resTag("team", "b"), true},
		{"StringNotEqualsIgnoreCase missing", "StringNotEqualsIgnoreCase", team, "a", nil, true},
		{"StringLike star", "StringLike", team, "a*", resTag("team", "abc"), true},
		{"StringLike star empty", "StringLike", team, "a*", resTag("team", "a"), true},
		{"StringLike question", "StringLike", team, "a?c", resTag("team", "abc"), true},
		{"StringLike question is one char", "StringLike", team, "a?c", resTag("team", "abbc"), false},
		{"StringLike case-sensitive", "StringLike", team, "A*", resTag("team", "abc"), false},
		{"StringLike spans slash and colon", "StringLike", team, "a*z", resTag("team", "a:/b/z"), true},
		{"StringLike missing", "StringLike", team, "*", nil, false},
		{"StringNotLike mismatch", "StringNotLike", team, "a*", resTag("team", "bcd"), true},
		{"StringNotLike match", "StringNotLike", team, "a*", resTag("team", "abc"), false},
		{"StringNotLike missing", "StringNotLike", team, "a*", nil, true},
		{"StringEqualsIfExists missing", "StringEqualsIfExists", team, "a", nil, true},
		{"StringEqualsIfExists present mismatch", "StringEqualsIfExists", team, "a", resTag("team", "b"), false},
		{"StringEqualsIfExists present match", "StringEqualsIfExists", team, "a", resTag("team", "a"), true},
		{"StringNotEqualsIfExists missing", "StringNotEqualsIfExists", team, "a", nil, true},
		{"StringLikeIfExists present mismatch", "StringLikeIfExists", team, "a*", resTag("team", "b"), false},
	})
}

func TestNumericOperators(t *testing.T) {
	const k = "perfleet:Replicas"
	runCondCases(t, []condCase{
		{"NumericEquals", "NumericEquals", k, "3", ctxKey(k, "3"), true},
		{"NumericEquals float form", "NumericEquals", k, 3, ctxKey(k, "3.0"), true},
		{"NumericEquals mismatch", "NumericEquals", k, "3", ctxKey(k, "4"), false},
		{"NumericEquals not a number", "NumericEquals", k, "3", ctxKey(k, "three"), false},
		{"NumericEquals missing", "NumericEquals", k, "3", nil, false},
		{"NumericNotEquals", "NumericNotEquals", k, "3", ctxKey(k, "4"), true},
		{"NumericNotEquals equal", "NumericNotEquals", k, "3", ctxKey(k, "3"), false},
		{"NumericNotEquals not a number", "NumericNotEquals", k, "3", ctxKey(k, "three"), true},
		{"NumericNotEquals missing", "NumericNotEquals", k, "3", nil, true},
		{"NumericLessThan", "NumericLessThan", k, "3", ctxKey(k, "2.5"), true},
		{"NumericLessThan equal", "NumericLessThan", k, "3", ctxKey(k, "3"), false},
		{"NumericLessThan missing", "NumericLessThan", k, "3", nil, false},
		{"NumericLessThanEquals equal", "NumericLessThanEquals", k, "3", ctxKey(k, "3"), true},
		{"NumericLessThanEquals greater", "NumericLessThanEquals", k, "3", ctxKey(k, "4"), false},
		{"NumericGreaterThan", "NumericGreaterThan", k, "3", ctxKey(k, "4"), true},
		{"NumericGreaterThan equal", "NumericGreaterThan", k, "3", ctxKey(k, "3"), false},
		{"NumericGreaterThanEquals equal", "NumericGreaterThanEquals", k, "3", ctxKey(k, "3"), true},
		{"NumericGreaterThanEquals less", "NumericGreaterThanEquals", k, "3", ctxKey(k, "2"), false},
		{"NumericGreaterThanEquals negative", "NumericGreaterThanEquals", k, "-1", ctxKey(k, "-0.5"), true},
		{"NumericLessThan values ORed", "NumericLessThan", k, []string{"1", "10"}, ctxKey(k, "5"), true},
		{"NumericLessThanIfExists missing", "NumericLessThanIfExists", k, "3", nil, true},
		{"NumericLessThanIfExists present", "NumericLessThanIfExists", k, "3", ctxKey(k, "5"), false},
	})
}

func TestDateOperators(t *testing.T) {
	const now = "2026-01-02T03:04:05Z"
	nowEpoch := testNow.Unix()
	runCondCases(t, []condCase{
		{"DateEquals rfc3339", "DateEquals", "aws:CurrentTime", now, nil, true},
		{"DateEquals other zone", "DateEquals", "aws:CurrentTime", "2026-01-02T05:04:05+02:00", nil, true},
		{"DateEquals epoch", "DateEquals", "aws:CurrentTime", nowEpoch, nil, true},
		{"DateEquals mismatch", "DateEquals", "aws:CurrentTime", "2026-01-02T03:04:06Z", nil, false},
		{"DateNotEquals", "DateNotEquals", "aws:CurrentTime", "2026-01-02T03:04:06Z", nil, true},
		{"DateNotEquals equal", "DateNotEquals", "aws:CurrentTime", now, nil, false},
		{"DateLessThan", "DateLessThan", "aws:CurrentTime", "2027-01-01T00:00:00Z", nil, true},
		{"DateLessThan past", "DateLessThan", "aws:CurrentTime", "2025-01-01T00:00:00Z", nil, false},
		{"DateLessThan equal", "DateLessThan", "aws:CurrentTime", now, nil, false},
		{"DateLessThanEquals equal", "DateLessThanEquals", "aws:CurrentTime", now, nil, true},
		{"DateGreaterThan date only", "DateGreaterThan", "aws:CurrentTime", "2026-01-02", nil, true},
		{"DateGreaterThan future", "DateGreaterThan", "aws:CurrentTime", "2026-01-03", nil, false},
		{"DateGreaterThanEquals equal", "DateGreaterThanEquals", "aws:CurrentTime", now, nil, true},
		{"DateGreaterThanEquals future", "DateGreaterThanEquals", "aws:CurrentTime", "2026-01-02T03:04:06Z", nil, false},
		{"DateLessThan on epoch key", "DateLessThan", "aws:EpochTime", nowEpoch + 1, nil, true},
		{"DateGreaterThan on epoch key", "DateGreaterThan", "aws:EpochTime", "2026-01-02T03:04:04Z", nil, true},
		{"DateLessThan on tag", "DateLessThan", "aws:ResourceTag/expires", "2026-06-01T00:00:00Z", resTag("expires", "2026-05-01T00:00:00Z"), true},
		{"DateLessThan unparsable tag", "DateLessThan", "aws:ResourceTag/expires", "2026-06-01T00:00:00Z", resTag("expires", "soon"), false},
		{"DateLessThan missing", "DateLessThan", "aws:ResourceTag/expires", "2026-06-01T00:00:00Z", nil, false},
		{"DateNotEquals missing", "DateNotEquals", "aws:ResourceTag/expires", "2026-06-01T00:00:00Z", nil, true},
		{"DateLessThanIfExists missing", "DateLessThanIfExists", "aws:ResourceTag/expires", "2026-06-01T00:00:00Z", nil, true},
	})
}

func TestBoolOperator(t *testing.T) {
	secure := func(b bool) func(*Request) { return func(r *Request) { r.SecureTransport = b } }
	runCondCases(t, []condCase{
		{"Bool true", "Bool", "aws:SecureTransport", "true", secure(true), true},
		{"Bool true vs false", "Bool", "aws:SecureTransport", "true", secure(false), false},
		{"Bool JSON boolean", "Bool", "aws:SecureTransport", false, secure(false), true},
		{"Bool upper case", "Bool", "aws:SecureTransport", "TRUE", secure(true), true},
		{"Bool on tag", "Bool", "aws:ResourceTag/public", "true", resTag("public", "True"), true},
		{"Bool on non-boolean tag", "Bool", "aws:ResourceTag/public", "false", resTag("public", "no"), false},
		{"Bool missing", "Bool", "aws:ResourceTag/public", "false", nil, false},
		{"BoolIfExists missing", "BoolIfExists", "aws:ResourceTag/public", "false", nil, true},
	})
}

func TestIPOperators(t *testing.T) {
	const k = "aws:SourceIp"
	runCondCases(t, []condCase{
		{"IpAddress in CIDR", "IpAddress", k, "10.0.0.0/8", sourceIP("10.1.2.3"), true},
		{"IpAddress outside", "IpAddress", k, "10.0.0.0/8", sourceIP("192.168.0.1"), false},
		{"IpAddress bare IP", "IpAddress", k, "10.1.2.3", sourceIP("10.1.2.3"), true},
		{"IpAddress host bits set", "IpAddress", k, "10.1.2.3/8", sourceIP("10.200.0.1"), true},
		{"IpAddress IPv6", "IpAddress", k, "2001:db8::/32", sourceIP("2001:db8::1"), true},
		{"IpAddress IPv6 outside", "IpAddress", k, "2001:db8::/32", sourceIP("2001:db9::1"), false},
		{"IpAddress v4-mapped", "IpAddress", k, "10.0.0.0/8", sourceIP("::ffff:10.1.2.3"), true},
		{"IpAddress values ORed", "IpAddress", k, []string{"192.168.0.0/16", "10.0.0.0/8"}, sourceIP("10.1.2.3"), true},
		{"IpAddress missing", "IpAddress", k, "0.0.0.0/0", nil, false},
		{"NotIpAddress outside", "NotIpAddress", k, "10.0.0.0/8", sourceIP("192.168.0.1"), true},
		{"NotIpAddress inside", "NotIpAddress", k, "10.0.0.0/8", sourceIP("10.1.2.3"), false},
		{"NotIpAddress missing", "NotIpAddress", k, "10.0.0.0/8", nil, true},
		{"IpAddressIfExists missing", "IpAddressIfExists", k, "10.0.0.0/8", nil, true},
		{"IpAddress on non-IP value", "IpAddress", "aws:ResourceTag/ip", "10.0.0.0/8", resTag("ip", "ten"), false},
	})
}

func TestArnOperators(t *testing.T) {
	const k = "aws:SourceArn"
	runCondCases(t, []condCase{
		{"ArnEquals exact", "ArnEquals", k, jobArn, sourceArn(jobArn), true},
		{"ArnEquals takes wildcards", "ArnEquals", k, "arn:aws:sagemaker:*:111122223333:ai-benchmark-job/*", sourceArn(jobArn), true},
		{"ArnLike resource wildcard", "ArnLike", k, "arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/*", sourceArn(jobArn), true},
		{"ArnLike question", "ArnLike", k, "arn:aws:sagemaker:us-east-1:111122223333:ai-benchmark-job/j?", sourceArn(jobArn), true},
		{"ArnLike component wildcard", "ArnLike", k, "arn:aws:s*:us-east-1:111122223333:ai-benchmark-job/j1", sourceArn(jobArn), true},
		{"ArnLike other account", "ArnLike", k, "arn:aws:sagemaker:*:444455556666:*", sourceArn(jobArn), false},
		{"ArnLike case-sensitive", "ArnLike", k, "arn:aws:sagemaker:us-east-1:111122223333:AI-benchmark-job/*", sourceArn(jobArn), false},
		{"ArnLike wildcards stay in their component", "ArnLike", k, "arn:aws:*:*:*:*", sourceArn("arn:aws:sagemaker:us-east-1:111122223333"), false},
		{"StringLike crosses components", "StringLike", k, "arn:aws:*:*:*:*", sourceArn("arn:aws:sagemaker:us-east-1:111122223333:x"), true},
		{"ArnLike colon in resource", "ArnLike", k, "arn:aws:sagemaker:*:*:a/*", sourceArn("arn:aws:sagemaker:r:1:a/b:c"), true},
		{"ArnLike not an ARN", "ArnLike", k, "arn:*:*:*:*:*", sourceArn("j1"), false},
		{"ArnLike missing", "ArnLike", k, "arn:*:*:*:*:*", nil, false},
		{"ArnNotEquals different", "ArnNotEquals", k, "arn:aws:sagemaker:*:444455556666:*", sourceArn(jobArn), true},
		{"ArnNotEquals same", "ArnNotEquals", k, jobArn, sourceArn(jobArn), false},
		{"ArnNotEquals missing", "ArnNotEquals", k, jobArn, nil, true},
		{"ArnNotLike match", "ArnNotLike", k, "arn:aws:sagemaker:*:*:*", sourceArn(jobArn), false},
		{"ArnNotLike missing", "ArnNotLike", k, "arn:aws:sagemaker:*:*:*", nil, true},
		{"ArnLikeIfExists missing", "ArnLikeIfExists", k, "arn:aws:sagemaker:*:*:*", nil, true},
		{"ArnLike on PrincipalArn", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::111122223333:user/*", nil, true},
	})
}

func TestNullOperator(t *testing.T) {
	runCondCases(t, []condCase{
		{"Null true on missing", "Null", team, "true", nil, true},
		{"Null true on present", "Null", team, "true", resTag("team", "a"), false},
		{"Null false on present", "Null", team, "false", resTag("team", "a"), true},
		{"Null false on missing", "Null", team, "false", nil, false},
		{"Null JSON boolean", "Null", team, true, nil, true},
		{"Null empty tag value is present", "Null", team, "true", resTag("team", ""), false},
		{"Null both values", "Null", team, []string{"true", "false"}, nil, true},
		{"Null on empty TagKeys", "Null", "aws:TagKeys", "true", tagKeys(), true},
		{"Null on TagKeys", "Null", "aws:TagKeys", "false", tagKeys("a"), true},
		{"Null on SecureTransport", "Null", "aws:SecureTransport", "false", nil, true},
		{"Null on SourceIp", "Null", "aws:SourceIp", "true", nil, true},
		{"Null on empty context key", "Null", "perfleet:x", "true", ctxKey("perfleet:x"), true},
	})
}

func TestSetOperators(t *testing.T) {
	const k = "aws:TagKeys"
	runCondCases(t, []condCase{
		{"ForAllValues all in set", "ForAllValues:StringEquals", k, []string{"a", "b"}, tagKeys("a"), true},
		{"ForAllValues all in set 2", "ForAllValues:StringEquals", k, []string{"a", "b"}, tagKeys("b", "a"), true},
		{"ForAllValues one outside", "ForAllValues:StringEquals", k, []string{"a", "b"}, tagKeys("a", "c"), false},
		{"ForAllValues missing", "ForAllValues:StringEquals", k, []string{"a", "b"}, nil, true},
		{"ForAllValues empty", "ForAllValues:StringEquals", k, []string{"a", "b"}, tagKeys(), true},
		{"ForAllValues like", "ForAllValues:StringLike", k, "team*", tagKeys("team", "teamx"), true},
		{"ForAllValues like outside", "ForAllValues:StringLike", k, "team*", tagKeys("team", "x"), false},
		{"ForAnyValue one in set", "ForAnyValue:StringEquals", k, []string{"a", "b"}, tagKeys("c", "a"), true},
		{"ForAnyValue none in set", "ForAnyValue:StringEquals", k, []string{"a", "b"}, tagKeys("c"), false},
		{"ForAnyValue missing", "ForAnyValue:StringEquals", k, []string{"a", "b"}, nil, false},
		{"ForAnyValue empty", "ForAnyValue:StringEquals", k, []string{"a", "b"}, tagKeys(), false},
		{"ForAllValues:StringNotEquals clean", "ForAllValues:StringNotEquals", k, "secret", tagKeys("a", "b"), true},
		{"ForAllValues:StringNotEquals one bad", "ForAllValues:StringNotEquals", k, "secret", tagKeys("a", "secret"), false},
		{"ForAllValues:StringNotEquals missing", "ForAllValues:StringNotEquals", k, "secret", nil, true},
		{"ForAnyValue:StringNotEquals one other", "ForAnyValue:StringNotEquals", k, "secret", tagKeys("secret", "a"), true},
		{"ForAnyValue:StringNotEquals only bad", "ForAnyValue:StringNotEquals", k, "secret", tagKeys("secret"), false},
		{"ForAnyValue:StringNotEquals missing", "ForAnyValue:StringNotEquals", k, "secret", nil, false},
		{"ForAnyValue IfExists missing", "ForAnyValue:StringEqualsIfExists", k, "a", nil, true},
		{"ForAnyValue IfExists present", "ForAnyValue:StringEqualsIfExists", k, "a", tagKeys("b"), false},
		{"ForAllValues IfExists missing", "ForAllValues:StringEqualsIfExists", k, "a", nil, true},
		{"plain operator on multi-valued key: any", "StringEquals", k, "a", tagKeys("c", "a"), true},
		{"plain negated operator on multi-valued key: none", "StringNotEquals", k, "a", tagKeys("c", "a"), false},
		{"plain negated operator on multi-valued key: clean", "StringNotEquals", k, "a", tagKeys("c", "d"), true},
		{"ForAnyValue on single-valued key", "ForAnyValue:StringEquals", team, "a", resTag("team", "a"), true},
		{"ForAllValues numeric", "ForAllValues:NumericLessThan", "perfleet:Sizes", "10", ctxKey("perfleet:Sizes", "1", "9"), true},
		{"ForAllValues numeric one big", "ForAllValues:NumericLessThan", "perfleet:Sizes", "10", ctxKey("perfleet:Sizes", "1", "11"), false},
		{"ForAnyValue ip", "ForAnyValue:IpAddress", "perfleet:Ips", "10.0.0.0/8", ctxKey("perfleet:Ips", "1.1.1.1", "10.0.0.1"), true},
		{"ForAllValues ArnLike", "ForAllValues:ArnLike", "perfleet:Roles", "arn:aws:iam::111122223333:role/*", ctxKey("perfleet:Roles", "arn:aws:iam::111122223333:role/a", "arn:aws:iam::444455556666:role/a"), false},
	})
}

// TestMultipleConditions checks AND across operators and keys, OR across values.
func TestMultipleConditions(t *testing.T) {
	p := MustParse(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
		"StringEquals":{"aws:ResourceTag/team":["a","b"],"aws:ResourceTag/env":"dev"},
		"Bool":{"aws:SecureTransport":"true"}}}}`)
	cases := []struct {
		tags   map[string]string
		secure bool
		want   bool
	}{
		{map[string]string{"team": "a", "env": "dev"}, true, true},
		{map[string]string{"team": "b", "env": "dev"}, true, true},
		{map[string]string{"team": "c", "env": "dev"}, true, false},
		{map[string]string{"team": "a", "env": "prod"}, true, false},
		{map[string]string{"team": "a"}, true, false},
		{map[string]string{"team": "a", "env": "dev"}, false, false},
	}
	for i, tc := range cases {
		req := baseRequest()
		req.ResourceTags, req.SecureTransport = tc.tags, tc.secure
		if got := Evaluate(req, p).Allowed(); got != tc.want {
			t.Errorf("case %d: %v, want %v", i, got, tc.want)
		}
	}
}
