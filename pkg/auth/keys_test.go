package auth

import (
	"strconv"
	"testing"
	"time"
)

// TestConditionKeys checks each condition key present and missing.
func TestConditionKeys(t *testing.T) {
	principalTag := func(k, v string) func(*Request) {
		return func(r *Request) { r.Principal.Tags = map[string]string{k: v} }
	}
	reqTag := func(k, v string) func(*Request) {
		return func(r *Request) { r.RequestTags = map[string]string{k: v} }
	}
	anonymous := func(r *Request) { r.Principal = Principal{} }
	runCondCases(t, []condCase{
		// aws:ResourceTag/<k>
		{"ResourceTag present", "StringEquals", "aws:ResourceTag/team", "a", resTag("team", "a"), true},
		{"ResourceTag other tag", "StringEquals", "aws:ResourceTag/team", "a", resTag("owner", "a"), false},
		{"ResourceTag missing is null", "Null", "aws:ResourceTag/team", "true", nil, true},
		{"ResourceTag key name case-insensitive", "StringEquals", "aws:ResourceTag/Team", "a", resTag("tEAM", "a"), true},
		{"ResourceTag prefix case-insensitive", "StringEquals", "AWS:resourcetag/team", "a", resTag("team", "a"), true},
		{"ResourceTag value case-sensitive", "StringEquals", "aws:ResourceTag/team", "a", resTag("team", "A"), false},
		{"ResourceTag keys differing in case: any value", "StringEquals", "aws:ResourceTag/team", "b",
			func(r *Request) { r.ResourceTags = map[string]string{"team": "a", "Team": "b"} }, true},
		{"ResourceTag keys differing in case: not-equals sees both", "StringNotEquals", "aws:ResourceTag/team", "b",
			func(r *Request) { r.ResourceTags = map[string]string{"team": "a", "Team": "b"} }, false},
		{"ResourceTag with spaces", "StringEquals", "aws:ResourceTag/Cost Center", "42", resTag("cost center", "42"), true},
		// aws:RequestTag/<k>
		{"RequestTag present", "StringEquals", "aws:RequestTag/team", "a", reqTag("team", "a"), true},
		{"RequestTag missing", "StringEquals", "aws:RequestTag/team", "a", resTag("team", "a"), false},
		{"RequestTag missing not-equals", "StringNotEquals", "aws:RequestTag/team", "a", nil, true},
		// aws:TagKeys
		{"TagKeys from RequestTags", "ForAnyValue:StringEquals", "aws:TagKeys", "team", reqTag("team", "a"), true},
		{"TagKeys explicit overrides RequestTags", "ForAnyValue:StringEquals", "aws:TagKeys", "team",
			func(r *Request) { r.RequestTags = map[string]string{"team": "a"}; r.TagKeys = []string{"owner"} }, false},
		{"TagKeys values case-sensitive", "ForAnyValue:StringEquals", "aws:TagKeys", "team", tagKeys("Team"), false},
		{"TagKeys missing", "ForAnyValue:StringEquals", "aws:TagKeys", "team", nil, false},
		// aws:PrincipalAccount, aws:PrincipalArn, aws:username, aws:PrincipalTag/<k>
		{"PrincipalAccount", "StringEquals", "aws:PrincipalAccount", acct, nil, true},
		{"PrincipalAccount other", "StringEquals", "aws:PrincipalAccount", otherAcc, nil, false},
		{"PrincipalAccount anonymous", "Null", "aws:PrincipalAccount", "true", anonymous, true},
		{"PrincipalAccount context cannot override", "StringEquals", "aws:PrincipalAccount", otherAcc, ctxKey("aws:PrincipalAccount", otherAcc), false},
		{"PrincipalArn", "StringEquals", "aws:PrincipalArn", aliceArn, nil, true},
		{"PrincipalArn like", "StringLike", "aws:PrincipalArn", "arn:aws:iam::111122223333:user/*", nil, true},
		{"PrincipalArn anonymous", "StringLike", "aws:PrincipalArn", "*", anonymous, false},
		{"username", "StringEquals", "aws:username", "alice", nil, true},
		{"username anonymous", "Null", "aws:username", "true", anonymous, true},
		{"PrincipalTag", "StringEquals", "aws:PrincipalTag/team", "a", principalTag("Team", "a"), true},
		{"PrincipalTag missing", "StringEquals", "aws:PrincipalTag/team", "a", nil, false},
		// aws:SourceAccount, aws:SourceArn
		{"SourceAccount", "StringEquals", "aws:SourceAccount", acct, func(r *Request) { r.SourceAccount = acct }, true},
		{"SourceAccount missing", "StringEquals", "aws:SourceAccount", acct, nil, false},
		{"SourceAccount missing is null", "Null", "aws:SourceAccount", "true", nil, true},
		{"SourceArn", "ArnLike", "aws:SourceArn", "arn:aws:sagemaker:*:111122223333:ai-benchmark-job/*", sourceArn(jobArn), true},
		{"SourceArn missing not-like", "ArnNotLike", "aws:SourceArn", "arn:aws:sagemaker:*:111122223333:*", nil, true},
		// aws:SecureTransport
		{"SecureTransport false", "Bool", "aws:SecureTransport", "false", nil, true},
		{"SecureTransport true", "Bool", "aws:SecureTransport", "true", func(r *Request) { r.SecureTransport = true }, true},
		// aws:SourceIp
		{"SourceIp", "IpAddress", "aws:SourceIp", "192.0.2.0/24", sourceIP("192.0.2.7"), true},
		{"SourceIp string form", "StringEquals", "aws:SourceIp", "192.0.2.7", sourceIP("::ffff:192.0.2.7"), true},
		{"SourceIp missing", "IpAddress", "aws:SourceIp", "0.0.0.0/0", nil, false},
		// aws:CurrentTime, aws:EpochTime
		{"CurrentTime string", "StringEquals", "aws:CurrentTime", "2026-01-02T03:04:05Z", nil, true},
		{"CurrentTime like", "StringLike", "aws:CurrentTime", "2026-01-*", nil, true},
		{"EpochTime numeric", "NumericEquals", "aws:EpochTime", strconv.FormatInt(testNow.Unix(), 10), nil, true},
		{"EpochTime always present", "Null", "aws:EpochTime", "false", nil, true},
		// Context keys
		{"service key", "StringEquals", "sagemaker:InstanceTypes", "ml.g5.xlarge", ctxKey("sagemaker:InstanceTypes", "ml.p4d.24xlarge", "ml.g5.xlarge"), true},
		{"service key case-insensitive", "StringEquals", "SageMaker:instancetypes", "ml.g5.xlarge", ctxKey("sagemaker:InstanceTypes", "ml.g5.xlarge"), true},
		{"service key missing", "StringEquals", "perfleet:Replicas", "1", nil, false},
		{"service key empty is missing", "ForAllValues:StringEquals", "perfleet:Replicas", "1", ctxKey("perfleet:Replicas"), true},
		{"RequestedRegion", "StringEquals", "aws:RequestedRegion", "us-east-1", ctxKey("aws:RequestedRegion", "us-east-1"), true},
		{"UserAgent", "StringLike", "aws:UserAgent", "perfleet/*", ctxKey("aws:useragent", "perfleet/1.0"), true},
		{"PrincipalType", "StringEquals", "aws:PrincipalType", "User", ctxKey("aws:PrincipalType", "User"), true},
		{"userid", "StringEquals", "aws:userid", "AIDA1", ctxKey("aws:userid", "AIDA1"), true},
	})
}

func TestCurrentTimeDefaultsToNow(t *testing.T) {
	p := MustParse(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
		"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2200-01-01"}}}}`)
	req := baseRequest()
	req.CurrentTime = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	if Evaluate(req, p).Allowed() {
		t.Error("a request in 2016 passed DateGreaterThan 2024")
	}
	req.CurrentTime = time.Time{}
	if !Evaluate(req, p).Allowed() {
		t.Error("a zero CurrentTime was not taken as now")
	}
}
