package auth

// A property test: random policies and requests, evaluated by Evaluate (on
// the JSON rendering of the policies) and by a reference evaluator (on the
// generated model, below). The reference is written separately and in the
// plainest way: its own wildcard matcher, variable substitution, key
// lookup, value parsing and operator semantics; it shares no helper with
// the package.

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// ---- the model -------------------------------------------------------------

type refPolicy struct {
	Name    string
	Version string
	Stmts   []refStmt
}

type refStmt struct {
	Deny         bool
	NotPrincipal bool
	Principals   []string // nil: no Principal element; "*" means anyone
	NotAction    bool
	Actions      []string
	NotResource  bool
	Resources    []string
	// Conditions: operator -> key -> values.
	Conditions map[string]map[string][]string
}

func (p refPolicy) json() []byte {
	var list []any
	for i, s := range p.Stmts {
		m := map[string]any{"Sid": fmt.Sprintf("S%d", i)}
		if s.Deny {
			m["Effect"] = "Deny"
		} else {
			m["Effect"] = "Allow"
		}
		if s.Principals != nil {
			var v any = map[string]any{"AWS": s.Principals}
			if len(s.Principals) == 1 && s.Principals[0] == "*" {
				v = "*"
			}
			if s.NotPrincipal {
				m["NotPrincipal"] = v
			} else {
				m["Principal"] = v
			}
		}
		if s.NotAction {
			m["NotAction"] = s.Actions
		} else {
			m["Action"] = s.Actions
		}
		if s.NotResource {
			m["NotResource"] = s.Resources
		} else {
			m["Resource"] = s.Resources
		}
		if len(s.Conditions) > 0 {
			m["Condition"] = s.Conditions
		}
		list = append(list, m)
	}
	doc, err := json.Marshal(map[string]any{"Version": p.Version, "Statement": list})
	if err != nil {
		panic(err)
	}
	return doc
}

// ---- the reference evaluator -----------------------------------------------

// refResult is (outcome, policy index, statement index) of the decision.
type refResult struct {
	outcome Outcome
	policy  int
	stmt    int
}

func refEvaluate(req Request, pols []refPolicy) refResult {
	if req.Action == "" {
		return refResult{ImplicitDeny, -1, -1}
	}
	firstAllow := refResult{ImplicitDeny, -1, -1}
	for pi, p := range pols {
		for si, s := range p.Stmts {
			if !refApplies(req, p.Version, s) {
				continue
			}
			if s.Deny {
				return refResult{ExplicitDeny, pi, si}
			}
			if firstAllow.outcome == ImplicitDeny {
				firstAllow = refResult{Allow, pi, si}
			}
		}
	}
	return firstAllow
}

func refApplies(req Request, version string, s refStmt) bool {
	// Principal.
	if s.Principals != nil {
		in := false
		for _, e := range s.Principals {
			if refPrincipalIs(req.Principal, e) {
				in = true
			}
		}
		if s.NotPrincipal {
			in = !in
		}
		if !in {
			return false
		}
	}
	// Action: case-insensitive.
	hit := false
	for _, a := range s.Actions {
		if refWildMatch(refText(strings.ToLower(a)), strings.ToLower(req.Action)) {
			hit = true
		}
	}
	if s.NotAction {
		hit = !hit
	}
	if !hit {
		return false
	}
	// Variables: all must resolve.
	vars := version == "2012-10-17"
	var resPatterns [][]refChar
	for _, r := range s.Resources {
		p, ok := refSubstitute(req, r, vars)
		if !ok {
			return false
		}
		resPatterns = append(resPatterns, p)
	}
	type resolvedCond struct {
		op, key string
		pats    [][]refChar
	}
	var conds []resolvedCond
	for op, keys := range s.Conditions {
		for key, vals := range keys {
			rc := resolvedCond{op: op, key: key}
			base := refBaseName(op)
			canVar := strings.HasPrefix(base, "String") || strings.HasPrefix(base, "Arn")
			for _, v := range vals {
				p, ok := refSubstitute(req, v, vars && canVar)
				if !ok {
					return false
				}
				rc.pats = append(rc.pats, p)
			}
			conds = append(conds, rc)
		}
	}
	// Resource: case-sensitive.
	res := req.Resource
	if res == "" {
		res = "*"
	}
	hit = false
	for _, p := range resPatterns {
		if refWildMatch(p, res) {
			hit = true
		}
	}
	if s.NotResource {
		hit = !hit
	}
	if !hit {
		return false
	}
	for _, c := range conds {
		if !refCondition(req, c.op, c.key, c.pats) {
			return false
		}
	}
	return true
}

func refPrincipalIs(p Principal, e string) bool {
	if e == "*" {
		return true
	}
	if len(e) == 12 && strings.Trim(e, "0123456789") == "" {
		return p.Account == e
	}
	if strings.HasPrefix(e, "arn:aws:iam::") && strings.HasSuffix(e, ":root") {
		return p.Account == strings.TrimSuffix(strings.TrimPrefix(e, "arn:aws:iam::"), ":root")
	}
	return p.ARN != "" && p.ARN == e
}

// refChar is a pattern character; wild marks '*' and '?' wildcards.
type refChar struct {
	c    rune
	wild bool
}

func refText(s string) []refChar {
	var out []refChar
	for _, c := range s {
		out = append(out, refChar{c, c == '*' || c == '?'})
	}
	return out
}

func refLiteral(s string) []refChar {
	var out []refChar
	for _, c := range s {
		out = append(out, refChar{c, false})
	}
	return out
}

// refWildMatch is a plain recursive wildcard matcher.
func refWildMatch(p []refChar, s string) bool {
	return refWildRunes(p, []rune(s))
}

func refWildRunes(p []refChar, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	if p[0].wild && p[0].c == '*' {
		for i := 0; i <= len(s); i++ {
			if refWildRunes(p[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	if len(s) == 0 {
		return false
	}
	if p[0].wild && p[0].c == '?' {
		return refWildRunes(p[1:], s[1:])
	}
	return p[0].c == s[0] && refWildRunes(p[1:], s[1:])
}

var refVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// refSubstitute turns a policy string into a pattern, substituting policy
// variables (when vars) with literal text.
func refSubstitute(req Request, s string, vars bool) ([]refChar, bool) {
	if !vars {
		return refText(s), true
	}
	var out []refChar
	last := 0
	for _, m := range refVarRE.FindAllStringSubmatchIndex(s, -1) {
		out = append(out, refText(s[last:m[0]])...)
		last = m[1]
		inner := strings.TrimSpace(s[m[2]:m[3]])
		if inner == "*" || inner == "?" || inner == "$" {
			out = append(out, refLiteral(inner)...)
			continue
		}
		key, def, hasDef := inner, "", false
		if i := strings.Index(inner, ","); i >= 0 {
			key = strings.TrimSpace(inner[:i])
			def = strings.Trim(strings.TrimSpace(inner[i+1:]), "'")
			hasDef = true
		}
		vals := refLookup(req, key)
		switch {
		case len(vals) == 1:
			out = append(out, refLiteral(vals[0])...)
		case hasDef:
			out = append(out, refLiteral(def)...)
		default:
			return nil, false
		}
	}
	return append(out, refText(s[last:])...), true
}

// refLookup returns the request's values for a condition key.
func refLookup(req Request, key string) []string {
	k := strings.ToLower(key)
	opt := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	tags := func(m map[string]string, name string) []string {
		var names []string
		for n := range m {
			if strings.ToLower(n) == strings.ToLower(name) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		var out []string
		for _, n := range names {
			out = append(out, m[n])
		}
		return out
	}
	switch {
	case k == "aws:principalaccount":
		return opt(req.Principal.Account)
	case k == "aws:principalarn":
		return opt(req.Principal.ARN)
	case k == "aws:username":
		return opt(req.Principal.Username)
	case k == "aws:sourceaccount":
		return opt(req.SourceAccount)
	case k == "aws:sourcearn":
		return opt(req.SourceArn)
	case k == "aws:securetransport":
		if req.SecureTransport {
			return []string{"true"}
		}
		return []string{"false"}
	case k == "aws:sourceip":
		if !req.SourceIP.IsValid() {
			return nil
		}
		return []string{req.SourceIP.Unmap().String()}
	case k == "aws:currenttime":
		return []string{req.CurrentTime.UTC().Format("2006-01-02T15:04:05Z")}
	case k == "aws:epochtime":
		return []string{fmt.Sprint(req.CurrentTime.Unix())}
	case k == "aws:tagkeys":
		if req.TagKeys != nil {
			return req.TagKeys
		}
		var keys []string
		for n := range req.RequestTags {
			keys = append(keys, n)
		}
		return keys
	case strings.HasPrefix(k, "aws:resourcetag/"):
		return tags(req.ResourceTags, key[len("aws:resourcetag/"):])
	case strings.HasPrefix(k, "aws:requesttag/"):
		return tags(req.RequestTags, key[len("aws:requesttag/"):])
	case strings.HasPrefix(k, "aws:principaltag/"):
		return tags(req.Principal.Tags, key[len("aws:principaltag/"):])
	}
	var out []string
	var names []string
	for n := range req.Context {
		if strings.ToLower(n) == k {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, req.Context[n]...)
	}
	return out
}

func refBaseName(op string) string {
	op = strings.TrimPrefix(op, "ForAllValues:")
	op = strings.TrimPrefix(op, "ForAnyValue:")
	return strings.TrimSuffix(op, "IfExists")
}

func refCondition(req Request, op, key string, pats [][]refChar) bool {
	vals := refLookup(req, key)
	base := refBaseName(op)
	if base == "Null" {
		for _, p := range pats {
			want := strings.ToLower(refString(p)) == "true"
			if want == (len(vals) == 0) {
				return true
			}
		}
		return false
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	forAll := strings.HasPrefix(op, "ForAllValues:")
	forAny := strings.HasPrefix(op, "ForAnyValue:")
	negated := strings.Contains(base, "Not")
	positive := strings.Replace(base, "Not", "", 1)
	// test: does one request value satisfy the operator (negation included)?
	test := func(v string) bool {
		m := false
		for _, p := range pats {
			if refPositive(positive, v, p) {
				m = true
			}
		}
		if negated {
			return !m
		}
		return m
	}
	if len(vals) == 0 {
		if ifExists || forAll {
			return true
		}
		if forAny {
			return false
		}
		return negated
	}
	if forAll {
		for _, v := range vals {
			if !test(v) {
				return false
			}
		}
		return true
	}
	if forAny {
		for _, v := range vals {
			if test(v) {
				return true
			}
		}
		return false
	}
	some := false
	for _, v := range vals {
		for _, p := range pats {
			if refPositive(positive, v, p) {
				some = true
			}
		}
	}
	return some != negated
}

func refString(p []refChar) string {
	var b strings.Builder
	for _, c := range p {
		b.WriteRune(c.c)
	}
	return b.String()
}

// refPositive applies a positive base operator to one request value and one
// policy value.
func refPositive(op, v string, p []refChar) bool {
	pv := refString(p)
	switch op {
	case "StringEquals":
		return v == pv
	case "StringEqualsIgnoreCase":
		return strings.EqualFold(v, pv)
	case "StringLike":
		return refWildMatch(p, v)
	case "ArnEquals", "ArnLike":
		// Six components, each matched alone.
		var parts [][]refChar
		cur := []refChar{}
		for _, c := range p {
			if !c.wild && c.c == ':' && len(parts) < 5 {
				parts = append(parts, cur)
				cur = []refChar{}
				continue
			}
			cur = append(cur, c)
		}
		parts = append(parts, cur)
		vs := strings.SplitN(v, ":", 6)
		if len(parts) != 6 || len(vs) != 6 {
			return false
		}
		for i := range parts {
			if !refWildMatch(parts[i], vs[i]) {
				return false
			}
		}
		return true
	case "Bool":
		return strings.EqualFold(v, pv) && (strings.EqualFold(v, "true") || strings.EqualFold(v, "false"))
	case "IpAddress":
		ip := net.ParseIP(v)
		if ip == nil {
			return false
		}
		if strings.Contains(pv, "/") {
			_, n, err := net.ParseCIDR(pv)
			return err == nil && n.Contains(ip)
		}
		return ip.Equal(net.ParseIP(pv))
	}
	if strings.HasPrefix(op, "Numeric") {
		a, err1 := strconv.ParseFloat(v, 64)
		b, err2 := strconv.ParseFloat(pv, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		return refCompare(strings.TrimPrefix(op, "Numeric"), a, b)
	}
	if strings.HasPrefix(op, "Date") {
		a, ok1 := refDate(v)
		b, ok2 := refDate(pv)
		if !ok1 || !ok2 {
			return false
		}
		return refCompare(strings.TrimPrefix(op, "Date"), float64(a.UnixNano()), float64(b.UnixNano()))
	}
	panic("reference: unknown operator " + op)
}

func refCompare(cmp string, a, b float64) bool {
	switch cmp {
	case "Equals":
		return a == b
	case "LessThan":
		return a < b
	case "LessThanEquals":
		return a <= b
	case "GreaterThan":
		return a > b
	case "GreaterThanEquals":
		return a >= b
	}
	panic("reference: unknown comparison " + cmp)
}

func refDate(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ---- generators ------------------------------------------------------------

var (
	genActionPatterns = []string{
		"*", "sagemaker:*", "sagemaker:Create*", "sagemaker:Describe*", "SAGEMAKER:describeaibenchmarkjob",
		"sagemaker:?reateAIBenchmarkJob", "sagemaker:CreateAIBenchmarkJob", "sagemaker:ListAIBenchmarkJobs",
		"sagemaker:*Tag*", "perfleet:*", "perfleet:PassRole", "perfleet:*Role", "s3:GetObject",
	}
	genActions = []string{
		ActionCreateAIBenchmarkJob, ActionDescribeAIBenchmarkJob, ActionListAIBenchmarkJobs,
		ActionTagResource, ActionPassRole, ActionCreateRole, "SageMaker:CreateAIBenchmarkJob",
	}
	genResourcePatterns = []string{
		"*",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/a",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/b",
		"arn:aws:sagemaker:*:111111111111:*",
		"arn:aws:sagemaker:us-east-1:*:ai-benchmark-job/?",
		"arn:aws:sagemaker:us-east-1:${aws:PrincipalAccount}:ai-benchmark-job/*",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/${aws:PrincipalTag/team}",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/${aws:PrincipalTag/team, 'a'}",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/${*}",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/${aws:username}*",
		"arn:aws:*",
		"arn:aws:sagemaker:us-east-1:222222222222:ai-benchmark-job/*",
		"arn:aws:iam::111111111111:role/*",
	}
	genResources = []string{
		"",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/a",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/b",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/*",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/ab",
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/alice-1",
		"arn:aws:sagemaker:us-east-1:222222222222:ai-benchmark-job/a",
		"arn:aws:iam::111111111111:role/r1",
	}
	genPrincipalEntries = []string{"*", "111111111111", "222222222222", "arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:user/alice"}

	stringOps  = []string{"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike"}
	stringKeys = []string{"aws:ResourceTag/team", "aws:resourcetag/TEAM", "aws:RequestTag/team", "aws:TagKeys", "aws:PrincipalTag/team",
		"aws:PrincipalAccount", "aws:SourceAccount", "aws:username", "sagemaker:InstanceTypes"}
	stringVals = []string{"a", "b", "A", "team", "Team", "111111111111", "a*", "*", "?", "", "alice",
		"${aws:PrincipalTag/team}", "${aws:PrincipalAccount}", "${aws:PrincipalTag/team, 'b'}", "${*}", "${aws:username}"}

	numericOps  = []string{"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"}
	numericKeys = []string{"perfleet:Replicas", "aws:ResourceTag/team", "aws:EpochTime"}
	numericVals = []string{"1", "5", "10", "1.5", "1704067200"}

	dateOps  = []string{"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"}
	dateKeys = []string{"aws:CurrentTime", "aws:EpochTime", "aws:ResourceTag/team"}
	dateVals = []string{"2024-01-01T00:00:00Z", "2025-06-01T00:00:00Z", "1704067200", "2024-01-01", "5"}

	boolKeys = []string{"aws:SecureTransport", "aws:ResourceTag/team"}
	boolVals = []string{"true", "false", "TRUE"}

	ipOps  = []string{"IpAddress", "NotIpAddress"}
	ipKeys = []string{"aws:SourceIp", "aws:ResourceTag/team"}
	ipVals = []string{"10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "2001:db8::/32"}

	arnOps  = []string{"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
	arnKeys = []string{"aws:SourceArn", "aws:PrincipalArn"}
	arnVals = []string{
		"arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/*",
		"arn:aws:sagemaker:*:*:*",
		"arn:aws:iam::111111111111:user/*",
		"arn:aws:iam::*:user/alice",
		"arn:aws:sagemaker:us-east-1:${aws:PrincipalAccount}:ai-benchmark-job/a",
		"arn:aws:*:*:*:*",
		"${aws:PrincipalArn}",
	}

	nullKeys = []string{"aws:ResourceTag/team", "aws:RequestTag/team", "aws:TagKeys", "aws:SourceArn", "aws:SourceIp",
		"aws:PrincipalTag/team", "sagemaker:InstanceTypes", "aws:SecureTransport"}
)

func genCondition(t *rapid.T, version string, conds map[string]map[string][]string) {
	family := rapid.IntRange(0, 6).Draw(t, "family")
	var ops, keys, vals []string
	switch family {
	case 0:
		ops, keys, vals = stringOps, stringKeys, stringVals
	case 1:
		ops, keys, vals = numericOps, numericKeys, numericVals
	case 2:
		ops, keys, vals = dateOps, dateKeys, dateVals
	case 3:
		ops, keys, vals = []string{"Bool"}, boolKeys, boolVals
	case 4:
		ops, keys, vals = ipOps, ipKeys, ipVals
	case 5:
		ops, keys, vals = arnOps, arnKeys, arnVals
		if version == "2008-10-17" {
			// "${aws:PrincipalArn}" is literal text there, and not an ARN.
			vals = arnVals[:len(arnVals)-1]
		}
	case 6:
		ops, keys, vals = []string{"Null"}, nullKeys, []string{"true", "false"}
	}
	op := rapid.SampledFrom(ops).Draw(t, "op")
	if op != "Null" {
		switch rapid.IntRange(0, 4).Draw(t, "set") {
		case 0:
			op = "ForAllValues:" + op
		case 1:
			op = "ForAnyValue:" + op
		}
		if rapid.IntRange(0, 3).Draw(t, "ifExists") == 0 {
			op += "IfExists"
		}
	}
	key := rapid.SampledFrom(keys).Draw(t, "key")
	values := rapid.SliceOfN(rapid.SampledFrom(vals), 1, 2).Draw(t, "values")
	if conds[op] == nil {
		conds[op] = map[string][]string{}
	}
	conds[op][key] = values
}

func genStmt(t *rapid.T, version string) refStmt {
	s := refStmt{Deny: rapid.IntRange(0, 2).Draw(t, "deny") == 0}
	switch rapid.IntRange(0, 5).Draw(t, "principal") {
	case 0:
		s.Principals = rapid.SliceOfN(rapid.SampledFrom(genPrincipalEntries), 1, 2).Draw(t, "principals")
	case 1:
		if s.Deny {
			s.NotPrincipal = true
			s.Principals = rapid.SliceOfN(rapid.SampledFrom(genPrincipalEntries[1:]), 1, 2).Draw(t, "notPrincipals")
		}
	}
	s.NotAction = rapid.IntRange(0, 4).Draw(t, "notAction") == 0
	s.Actions = rapid.SliceOfN(rapid.SampledFrom(genActionPatterns), 1, 3).Draw(t, "actions")
	s.NotResource = rapid.IntRange(0, 4).Draw(t, "notResource") == 0
	s.Resources = rapid.SliceOfN(rapid.SampledFrom(genResourcePatterns), 1, 2).Draw(t, "resources")
	n := rapid.IntRange(0, 3).Draw(t, "conditions")
	if n > 0 {
		s.Conditions = map[string]map[string][]string{}
		for range n {
			genCondition(t, version, s.Conditions)
		}
	}
	return s
}

func genPolicy(t *rapid.T, name string) refPolicy {
	p := refPolicy{Name: name, Version: "2012-10-17"}
	if rapid.IntRange(0, 9).Draw(t, "v2008") == 0 {
		p.Version = "2008-10-17"
	}
	n := rapid.IntRange(1, 4).Draw(t, "statements")
	for range n {
		p.Stmts = append(p.Stmts, genStmt(t, p.Version))
	}
	return p
}

func genTags(t *rapid.T, label string, keys, vals []string) map[string]string {
	if rapid.IntRange(0, 3).Draw(t, label+"Nil") == 0 {
		return nil
	}
	m := map[string]string{}
	for range rapid.IntRange(0, 3).Draw(t, label+"N") {
		m[rapid.SampledFrom(keys).Draw(t, label+"Key")] = rapid.SampledFrom(vals).Draw(t, label+"Val")
	}
	return m
}

func genRequest(t *rapid.T) Request {
	tagVals := []string{"a", "b", "A", "*", "", "1", "5", "10", "true", "10.1.2.3", "2024-06-01T00:00:00Z", "a*"}
	r := Request{
		Action:   rapid.SampledFrom(genActions).Draw(t, "action"),
		Resource: rapid.SampledFrom(genResources).Draw(t, "resource"),
	}
	switch rapid.IntRange(0, 3).Draw(t, "who") {
	case 0:
		r.Principal = Principal{ARN: "arn:aws:iam::111111111111:user/alice", Account: "111111111111", Username: "alice"}
	case 1:
		r.Principal = Principal{ARN: "arn:aws:iam::222222222222:user/bob", Account: "222222222222", Username: "bob"}
	case 2:
		r.Principal = Principal{ARN: "arn:aws:iam::111111111111:role/job", Account: "111111111111"}
	}
	r.Principal.Tags = genTags(t, "ptag", []string{"team", "Team", "dept"}, []string{"a", "b", "A", "*", ""})
	r.ResourceTags = genTags(t, "rtag", []string{"team", "TEAM", "owner"}, tagVals)
	r.RequestTags = genTags(t, "qtag", []string{"team", "Team", "owner"}, tagVals)
	if rapid.Bool().Draw(t, "tagKeysSet") {
		r.TagKeys = rapid.SliceOfN(rapid.SampledFrom([]string{"team", "Team", "a", "b", "owner"}), 0, 3).Draw(t, "tagKeys")
	}
	r.SourceAccount = rapid.SampledFrom([]string{"", "111111111111", "222222222222"}).Draw(t, "sourceAccount")
	r.SourceArn = rapid.SampledFrom([]string{"", "arn:aws:sagemaker:us-east-1:111111111111:ai-benchmark-job/a",
		"arn:aws:sagemaker:us-east-1:222222222222:ai-benchmark-job/b", "arn:aws:sagemaker:us-east-1:111111111111",
		"arn:aws:iam::111111111111:user/alice"}).Draw(t, "sourceArn")
	r.SecureTransport = rapid.Bool().Draw(t, "secure")
	ip := rapid.SampledFrom([]string{"", "10.1.2.3", "192.168.1.1", "2001:db8::5", "::ffff:10.1.2.3", "8.8.8.8"}).Draw(t, "ip")
	if ip != "" {
		r.SourceIP = netip.MustParseAddr(ip)
	}
	r.CurrentTime = rapid.SampledFrom([]time.Time{
		time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
	}).Draw(t, "now")
	r.Context = map[string][]string{}
	switch rapid.IntRange(0, 4).Draw(t, "instanceTypes") {
	case 1:
		r.Context["sagemaker:InstanceTypes"] = []string{}
	case 2:
		r.Context["sagemaker:InstanceTypes"] = []string{"a"}
	case 3:
		r.Context["SageMaker:instancetypes"] = []string{"a", "b"}
	case 4:
		r.Context["sagemaker:InstanceTypes"] = []string{"A", "team"}
	}
	switch rapid.IntRange(0, 3).Draw(t, "replicas") {
	case 1:
		r.Context["perfleet:Replicas"] = []string{"5"}
	case 2:
		r.Context["perfleet:Replicas"] = []string{"1", "10"}
	case 3:
		r.Context["perfleet:Replicas"] = []string{"x"}
	}
	return r
}

// ---- the property ----------------------------------------------------------

const propertyCases = 10000

func TestPropertyEvaluateMatchesReference(t *testing.T) {
	// Run propertyCases cases whatever -rapid.checks says (unless it asks
	// for more); -short divides rapid's count by 5, so compensate.
	want := propertyCases
	if testing.Short() {
		want *= 5
	}
	if f := flag.Lookup("rapid.checks"); f != nil {
		old := f.Value.String()
		if n, _ := strconv.Atoi(old); n < want {
			if err := f.Value.Set(strconv.Itoa(want)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Value.Set(old) })
		}
	}
	ran, outcomes := 0, map[Outcome]int{}
	rapid.Check(t, func(rt *rapid.T) {
		ran++
		var models []refPolicy
		var policies []*Policy
		for i := range rapid.IntRange(1, 2).Draw(rt, "policies") {
			m := genPolicy(rt, fmt.Sprintf("p%d", i))
			doc := m.json()
			p, err := Parse(doc)
			if err != nil {
				rt.Fatalf("generated policy does not parse: %v\n%s", err, doc)
			}
			p.Name = m.Name
			models = append(models, m)
			policies = append(policies, p)
		}
		req := genRequest(rt)
		got := Evaluate(req, policies...)
		want := refEvaluate(req, models)
		outcomes[want.outcome]++
		mismatch := got.Effect != want.outcome
		if !mismatch && want.outcome != ImplicitDeny {
			ref := got.MatchedStatement
			mismatch = ref == nil || ref.Policy != models[want.policy].Name || ref.Index != want.stmt ||
				ref.Sid != fmt.Sprintf("S%d", want.stmt)
		}
		if mismatch {
			var docs []string
			for _, m := range models {
				docs = append(docs, string(m.json()))
			}
			rt.Fatalf("mismatch: Evaluate = %v, reference = %v (policy %d, statement %d)\npolicies:\n%s\nrequest: %+v",
				got, want.outcome, want.policy, want.stmt, strings.Join(docs, "\n"), req)
		}
	})
	t.Logf("%d cases, 0 mismatches; reference outcomes: %v", ran, outcomes)
	if ran < propertyCases {
		t.Errorf("ran %d cases, want at least %d", ran, propertyCases)
	}
	// The generator must exercise every outcome, or the property is weak.
	for _, o := range []Outcome{Allow, ExplicitDeny, ImplicitDeny} {
		if outcomes[o] < ran/50 {
			t.Errorf("only %d of %d cases ended in %v", outcomes[o], ran, o)
		}
	}
}
