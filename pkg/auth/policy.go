package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Policy language versions.
const (
	// Version2012 is the current policy language: policy variables
	// (${aws:PrincipalAccount} …) are substituted.
	Version2012 = "2012-10-17"
	// Version2008 is the old policy language: "${…}" is literal text.
	Version2008 = "2008-10-17"
)

// MaxPolicySize is the largest policy document Parse accepts, in bytes.
const MaxPolicySize = 128 << 10

// AdministratorAccessDocument is a policy that allows every action on every
// resource.
const AdministratorAccessDocument = `{"Version":"2012-10-17","Statement":[{"Sid":"AdministratorAccess","Effect":"Allow","Action":"*","Resource":"*"}]}`

// Effect is the Effect of a policy statement.
type Effect string

// Statement effects.
const (
	EffectAllow Effect = "Allow"
	EffectDeny  Effect = "Deny"
)

// Policy is a parsed, validated policy document. It is immutable once
// parsed, apart from Name, and safe for concurrent use by Evaluate.
type Policy struct {
	// Name identifies the policy in Decision explanations; Parse leaves it
	// empty. Set it before sharing the Policy between goroutines.
	Name string

	version    string
	id         string
	statements []*statement
	doc        []byte
}

// Version returns the policy's Version element.
func (p *Policy) Version() string { return p.version }

// ID returns the policy's optional Id element.
func (p *Policy) ID() string { return p.id }

// NumStatements returns the number of statements in the policy.
func (p *Policy) NumStatements() int { return len(p.statements) }

// Sids returns the Sid of each statement, "" where a statement has none.
func (p *Policy) Sids() []string {
	out := make([]string, len(p.statements))
	for i, s := range p.statements {
		out[i] = s.sid
	}
	return out
}

// Document returns a copy of the JSON document the policy was parsed from.
func (p *Policy) Document() []byte { return bytes.Clone(p.doc) }

// principalSpec is a Principal or NotPrincipal element.
type principalSpec struct {
	any     bool     // "*" or {"AWS": "*"}
	entries []string // account IDs, account root ARNs, principal ARNs
}

type statement struct {
	index       int
	sid         string
	effect      Effect
	principal   *principalSpec
	notPrinc    bool // principal is a NotPrincipal
	actions     [][]tok
	notAction   bool
	resources   []template
	notResource bool
	anyResource bool // no Resource element (resource policies only)
	conditions  []*condition
}

// ParseError is a policy validation error: Field is the path of the
// offending element, e.g. "Statement[1].Effect", and Rule the rule it
// breaks, e.g. `must be Allow or Deny, got "allow"`.
type ParseError struct {
	Field string
	Rule  string
}

// Error returns "Field: Rule".
func (e *ParseError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// maxErrors bounds the errors Parse reports for one document.
const maxErrors = 20

type errList struct{ errs []error }

func (l *errList) add(field, rule string) {
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, &ParseError{Field: field, Rule: rule})
	}
}

func (l *errList) err() error {
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	}
	return errors.Join(l.errs...)
}

// MustParse is like Parse but panics on an invalid document. It is meant
// for built-in policies and tests.
func MustParse(doc string) *Policy {
	p, err := Parse([]byte(doc))
	if err != nil {
		panic("auth.MustParse: " + err.Error())
	}
	return p
}

// Parse parses and validates a policy document in AWS's JSON policy
// language. The error, when not nil, is a *ParseError, or an errors.Join of
// several, each naming the element and the rule it breaks.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxPolicySize {
		return nil, &ParseError{Rule: fmt.Sprintf("policy document is %d bytes; the limit is %d", len(doc), MaxPolicySize)}
	}
	if err := checkJSON(doc); err != nil {
		return nil, err
	}
	var el errList
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil || top == nil {
		return nil, &ParseError{Rule: "policy document must be a JSON object"}
	}
	unknownKeys(&el, "", top, "Version", "Id", "Statement")

	p := &Policy{doc: bytes.Clone(doc)}
	if raw, ok := top["Version"]; !ok {
		el.add("Version", `required; use "2012-10-17"`)
	} else if v, ok := jsonString(raw); !ok || (v != Version2012 && v != Version2008) {
		el.add("Version", `must be "2012-10-17" or "2008-10-17", got `+string(raw))
	} else {
		p.version = v
	}
	if raw, ok := top["Id"]; ok {
		if v, ok := jsonString(raw); ok {
			p.id = v
		} else {
			el.add("Id", "must be a string")
		}
	}
	vars := p.version != Version2008

	raw, ok := top["Statement"]
	if !ok {
		el.add("Statement", "required")
		return nil, el.err()
	}
	var list []json.RawMessage
	var paths []string
	switch firstByte(raw) {
	case '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			el.add("Statement", "must be an object or an array of objects")
			return nil, el.err()
		}
		if len(list) == 0 {
			el.add("Statement", "must contain at least one statement")
		}
		for i := range list {
			paths = append(paths, fmt.Sprintf("Statement[%d]", i))
		}
	case '{':
		list, paths = []json.RawMessage{raw}, []string{"Statement"}
	default:
		el.add("Statement", "must be an object or an array of objects")
		return nil, el.err()
	}
	sids := map[string]string{}
	for i, r := range list {
		st := parseStatement(&el, paths[i], r, vars)
		if st == nil {
			continue
		}
		st.index = i
		if st.sid != "" {
			if prev, dup := sids[st.sid]; dup {
				el.add(paths[i]+".Sid", fmt.Sprintf("duplicate Sid %q (also %s)", st.sid, prev))
			}
			sids[st.sid] = paths[i]
		}
		p.statements = append(p.statements, st)
	}
	if err := el.err(); err != nil {
		return nil, err
	}
	return p, nil
}

var statementKeys = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

var sidRE = regexp.MustCompile(`^[A-Za-z0-9]*$`)

func parseStatement(el *errList, path string, raw json.RawMessage, vars bool) *statement {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		el.add(path, "must be a JSON object")
		return nil
	}
	unknownKeys(el, path, m, statementKeys...)
	st := &statement{}

	if r, ok := m["Sid"]; ok {
		s, ok := jsonString(r)
		switch {
		case !ok:
			el.add(path+".Sid", "must be a string")
		case !sidRE.MatchString(s):
			el.add(path+".Sid", fmt.Sprintf("must contain only ASCII letters and digits, got %q", s))
		default:
			st.sid = s
		}
	}

	if r, ok := m["Effect"]; !ok {
		el.add(path+".Effect", "required: Allow or Deny")
	} else if s, ok := jsonString(r); !ok || (s != string(EffectAllow) && s != string(EffectDeny)) {
		el.add(path+".Effect", "must be Allow or Deny, got "+string(r))
	} else {
		st.effect = Effect(s)
	}

	// Principal / NotPrincipal.
	pr, hasP := m["Principal"]
	npr, hasNP := m["NotPrincipal"]
	switch {
	case hasP && hasNP:
		el.add(path, "has both Principal and NotPrincipal; use one")
	case hasP:
		st.principal = parsePrincipal(el, path+".Principal", pr)
	case hasNP:
		st.principal = parsePrincipal(el, path+".NotPrincipal", npr)
		st.notPrinc = true
		if st.effect == EffectAllow {
			el.add(path+".NotPrincipal", "may only be used with Effect Deny")
		}
	}

	// Action / NotAction.
	a, hasA := m["Action"]
	na, hasNA := m["NotAction"]
	switch {
	case hasA && hasNA:
		el.add(path, "has both Action and NotAction; use one")
	case !hasA && !hasNA:
		el.add(path, "must have Action or NotAction")
	default:
		field, r := path+".Action", a
		if hasNA {
			field, r, st.notAction = path+".NotAction", na, true
		}
		for i, s := range stringList(el, field, r) {
			if rule := checkAction(s); rule != "" {
				el.add(fmt.Sprintf("%s[%d]", field, i), rule)
				continue
			}
			st.actions = append(st.actions, wildTokens(strings.ToLower(s)))
		}
	}

	// Resource / NotResource.
	res, hasR := m["Resource"]
	nres, hasNR := m["NotResource"]
	switch {
	case hasR && hasNR:
		el.add(path, "has both Resource and NotResource; use one")
	case !hasR && !hasNR:
		if !hasP && !hasNP {
			el.add(path, "must have Resource or NotResource")
		}
		st.anyResource = true
	default:
		field, r := path+".Resource", res
		if hasNR {
			field, r, st.notResource = path+".NotResource", nres, true
		}
		for i, s := range stringList(el, field, r) {
			t, rule := parseResource(s, vars)
			if rule != "" {
				el.add(fmt.Sprintf("%s[%d]", field, i), rule)
				continue
			}
			st.resources = append(st.resources, t)
		}
	}

	if r, ok := m["Condition"]; ok {
		st.conditions = parseConditions(el, path+".Condition", r, vars)
	}
	return st
}

var actionRE = regexp.MustCompile(`^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$`)

func checkAction(s string) string {
	if s == "*" {
		return ""
	}
	if !actionRE.MatchString(s) {
		return fmt.Sprintf(`action %q must be "*" or service:Action (letters, digits and the wildcards * and ?)`, s)
	}
	svc, name, _ := strings.Cut(s, ":")
	switch strings.ToLower(svc) {
	case "sagemaker", "perfleet":
		if !strings.ContainsAny(name, "*?") && !IsKnownAction(s) {
			return fmt.Sprintf("unknown action %q", s)
		}
	}
	return ""
}

// parseResource validates a Resource element value: "*" or an ARN pattern.
func parseResource(s string, vars bool) (template, string) {
	t, rule := parseTemplate(s, vars)
	if rule != "" {
		return t, rule
	}
	if s == "*" {
		return t, ""
	}
	// Count the colons outside policy variables; a '*' may stand for the
	// rest of the ARN, colons included ("arn:aws:sagemaker:*").
	colons, star := 0, false
	for _, seg := range t.segs {
		if seg.kind == segText {
			colons += strings.Count(seg.text, ":")
			star = star || strings.Contains(seg.text, "*")
		}
	}
	if !strings.HasPrefix(s, "arn:") || (colons < 5 && !star) {
		return t, fmt.Sprintf(`resource %q must be "*" or an ARN (arn:partition:service:region:account:resource)`, s)
	}
	return t, ""
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

var rootArnRE = regexp.MustCompile(`^arn:[a-z0-9-]+:iam::([0-9]{12}):root$`)

func parsePrincipal(el *errList, field string, raw json.RawMessage) *principalSpec {
	spec := &principalSpec{}
	if s, ok := jsonString(raw); ok {
		if s != "*" {
			el.add(field, fmt.Sprintf(`must be "*" or {"AWS": …}, got %q`, s))
		}
		spec.any = true
		return spec
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		el.add(field, `must be "*" or {"AWS": …}`)
		return spec
	}
	unknownKeys(el, field, m, "AWS")
	r, ok := m["AWS"]
	if !ok {
		el.add(field, `must have an "AWS" entry`)
		return spec
	}
	for i, s := range stringList(el, field+".AWS", r) {
		switch {
		case s == "*":
			spec.any = true
		case accountRE.MatchString(s), rootArnRE.MatchString(s), strings.HasPrefix(s, "arn:") && !strings.ContainsAny(s, "*?"):
			spec.entries = append(spec.entries, s)
		default:
			el.add(fmt.Sprintf("%s.AWS[%d]", field, i), fmt.Sprintf(`%q must be "*", a 12-digit account ID or a principal ARN without wildcards`, s))
		}
	}
	return spec
}

// matches reports whether the principal is one of the spec's.
func (p *principalSpec) matches(pr *Principal) bool {
	if p.any {
		return true
	}
	for _, e := range p.entries {
		if accountRE.MatchString(e) {
			if pr.Account == e {
				return true
			}
			continue
		}
		if m := rootArnRE.FindStringSubmatch(e); m != nil {
			if pr.Account == m[1] {
				return true
			}
			continue
		}
		if pr.ARN != "" && pr.ARN == e {
			return true
		}
	}
	return false
}

func parseConditions(el *errList, field string, raw json.RawMessage, vars bool) []*condition {
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil || ops == nil {
		el.add(field, "must be an object of condition operators")
		return nil
	}
	var out []*condition
	for _, opName := range sortedKeys(ops) {
		opField := field + "." + opName
		op, rule := parseOperator(opName)
		if rule != "" {
			el.add(field, rule)
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(ops[opName], &keys); err != nil || keys == nil {
			el.add(opField, "must be an object of condition keys")
			continue
		}
		if len(keys) == 0 {
			el.add(opField, "must name at least one condition key")
		}
		for _, k := range sortedKeys(keys) {
			keyField := opField + "." + k
			canon, rule := canonicalKey(k)
			if rule != "" {
				el.add(keyField, rule)
				continue
			}
			c := &condition{op: op, rawKey: k, key: canon}
			ok := true
			vals, valsOK := conditionValues(keys[k])
			if !valsOK {
				el.add(keyField, "must be a string, number or boolean, or a non-empty array of them")
				continue
			}
			for i, v := range vals {
				cv, rule := parseCondValue(op, v, vars && op.base.vars())
				if rule != "" {
					f := keyField
					if len(vals) > 1 {
						f = fmt.Sprintf("%s[%d]", keyField, i)
					}
					el.add(f, rule)
					ok = false
					continue
				}
				c.values = append(c.values, cv)
			}
			if ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// conditionValues decodes a condition value: a scalar or a non-empty array
// of scalars (strings, numbers, booleans), each as its string form.
func conditionValues(raw json.RawMessage) ([]string, bool) {
	if firstByte(raw) == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
			return nil, false
		}
		out := make([]string, 0, len(list))
		for _, r := range list {
			s, ok := scalar(r)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	s, ok := scalar(raw)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

func scalar(raw json.RawMessage) (string, bool) {
	switch b := firstByte(raw); {
	case b == '"':
		return jsonString(raw)
	case b == 't' || b == 'f':
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return "", false
		}
		return strconv.FormatBool(v), true
	case b == '-' || (b >= '0' && b <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}

// stringList decodes a string or a non-empty array of strings.
func stringList(el *errList, field string, raw json.RawMessage) []string {
	if s, ok := jsonString(raw); ok {
		return []string{s}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		el.add(field, "must be a string or an array of strings")
		return nil
	}
	if len(list) == 0 {
		el.add(field, "must not be empty")
		return nil
	}
	out := make([]string, 0, len(list))
	for i, r := range list {
		s, ok := jsonString(r)
		if !ok {
			el.add(fmt.Sprintf("%s[%d]", field, i), "must be a string")
			continue
		}
		out = append(out, s)
	}
	return out
}

func jsonString(raw json.RawMessage) (string, bool) {
	if firstByte(raw) != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func firstByte(raw json.RawMessage) byte {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// unknownKeys reports the keys of m that are not allowed.
func unknownKeys(el *errList, field string, m map[string]json.RawMessage, allowed ...string) {
	for _, k := range sortedKeys(m) {
		if slices.Contains(allowed, k) {
			continue
		}
		rule := "unknown key " + strconv.Quote(k)
		for _, a := range allowed {
			if strings.EqualFold(a, k) {
				rule += " (element names are case-sensitive; did you mean " + strconv.Quote(a) + "?)"
			}
		}
		el.add(field, rule)
	}
}

// checkJSON checks that doc is one well-formed JSON value with no duplicate
// object keys anywhere (encoding/json would silently keep the last one,
// which could hide a Deny).
func checkJSON(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := walkJSON(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ParseError{Rule: "policy document has data after the JSON value"}
	}
	return nil
}

func walkJSON(dec *json.Decoder, path string) error {
	t, err := dec.Token()
	if err != nil {
		return &ParseError{Field: path, Rule: "invalid JSON: " + err.Error()}
	}
	d, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return &ParseError{Field: path, Rule: "invalid JSON: " + err.Error()}
			}
			k, _ := kt.(string)
			if seen[k] {
				return &ParseError{Field: path, Rule: "duplicate key " + strconv.Quote(k)}
			}
			seen[k] = true
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			if err := walkJSON(dec, sub); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return &ParseError{Field: path, Rule: "invalid JSON: " + err.Error()}
	}
	return nil
}
