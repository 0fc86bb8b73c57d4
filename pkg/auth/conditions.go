package auth

import (
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// opKind is the data type an operator compares.
type opKind uint8

const (
	kindString opKind = iota
	kindStringIgnoreCase
	kindStringLike
	kindNumeric
	kindDate
	kindBool
	kindIP
	kindArn
	kindNull
)

type cmpKind uint8

const (
	cmpEq cmpKind = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// baseOp is a condition operator without set prefix or IfExists suffix.
type baseOp struct {
	kind    opKind
	cmp     cmpKind
	negated bool
}

// vars reports whether the operator's values may hold policy variables.
func (b baseOp) vars() bool {
	switch b.kind {
	case kindString, kindStringIgnoreCase, kindStringLike, kindArn:
		return true
	}
	return false
}

var baseOps = map[string]baseOp{
	"StringEquals":              {kind: kindString},
	"StringNotEquals":           {kind: kindString, negated: true},
	"StringEqualsIgnoreCase":    {kind: kindStringIgnoreCase},
	"StringNotEqualsIgnoreCase": {kind: kindStringIgnoreCase, negated: true},
	"StringLike":                {kind: kindStringLike},
	"StringNotLike":             {kind: kindStringLike, negated: true},

	"NumericEquals":            {kind: kindNumeric, cmp: cmpEq},
	"NumericNotEquals":         {kind: kindNumeric, cmp: cmpEq, negated: true},
	"NumericLessThan":          {kind: kindNumeric, cmp: cmpLt},
	"NumericLessThanEquals":    {kind: kindNumeric, cmp: cmpLe},
	"NumericGreaterThan":       {kind: kindNumeric, cmp: cmpGt},
	"NumericGreaterThanEquals": {kind: kindNumeric, cmp: cmpGe},

	"DateEquals":            {kind: kindDate, cmp: cmpEq},
	"DateNotEquals":         {kind: kindDate, cmp: cmpEq, negated: true},
	"DateLessThan":          {kind: kindDate, cmp: cmpLt},
	"DateLessThanEquals":    {kind: kindDate, cmp: cmpLe},
	"DateGreaterThan":       {kind: kindDate, cmp: cmpGt},
	"DateGreaterThanEquals": {kind: kindDate, cmp: cmpGe},

	"Bool": {kind: kindBool},

	"IpAddress":    {kind: kindIP},
	"NotIpAddress": {kind: kindIP, negated: true},

	"ArnEquals":    {kind: kindArn},
	"ArnLike":      {kind: kindArn},
	"ArnNotEquals": {kind: kindArn, negated: true},
	"ArnNotLike":   {kind: kindArn, negated: true},

	"Null": {kind: kindNull},
}

// ConditionOperators returns the names of the base condition operators, in
// sorted order. Each, except Null, also takes the IfExists suffix and the
// ForAllValues: and ForAnyValue: prefixes.
func ConditionOperators() []string {
	out := make([]string, 0, len(baseOps))
	for k := range baseOps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type setKind uint8

const (
	setNone setKind = iota
	setAll          // ForAllValues:
	setAny          // ForAnyValue:
)

type condOp struct {
	name     string
	base     baseOp
	set      setKind
	ifExists bool
}

// parseOperator parses e.g. "ForAnyValue:StringLikeIfExists".
func parseOperator(name string) (condOp, string) {
	op := condOp{name: name}
	s := name
	switch {
	case strings.HasPrefix(s, "ForAllValues:"):
		op.set, s = setAll, strings.TrimPrefix(s, "ForAllValues:")
	case strings.HasPrefix(s, "ForAnyValue:"):
		op.set, s = setAny, strings.TrimPrefix(s, "ForAnyValue:")
	}
	base, ok := baseOps[s]
	if !ok && strings.HasSuffix(s, "IfExists") {
		base, ok = baseOps[strings.TrimSuffix(s, "IfExists")]
		op.ifExists = ok
	}
	if !ok {
		rule := "unknown condition operator " + strconv.Quote(name)
		for k := range baseOps {
			if strings.EqualFold(k, s) || strings.EqualFold(k+"IfExists", s) {
				rule += " (operator names are case-sensitive; did you mean " + strconv.Quote(k) + "?)"
				break
			}
		}
		return op, rule
	}
	if base.kind == kindNull && (op.set != setNone || op.ifExists) {
		return op, "condition operator " + strconv.Quote(name) + ": Null takes neither a ForAllValues:/ForAnyValue: prefix nor IfExists"
	}
	op.base = base
	return op, ""
}

// condValue is one policy value of a condition, parsed for its operator.
type condValue struct {
	tmpl template // string and ARN operators
	num  float64
	t    time.Time
	b    bool
	pfx  netip.Prefix
}

// condition is one (operator, key, values) triple of a Condition block.
type condition struct {
	op     condOp
	rawKey string
	key    string // canonical, lower-cased
	values []condValue
}

var numberRE = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)

func parseNumber(s string) (float64, bool) {
	if !numberRE.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

var epochRE = regexp.MustCompile(`^-?[0-9]{1,15}$`)

// parseDate accepts RFC 3339 (with or without fractional seconds), an
// ISO 8601 date-time without zone (UTC), a date alone (midnight UTC), or
// epoch seconds.
func parseDate(s string) (time.Time, bool) {
	if epochRE.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		return time.Unix(n, 0).UTC(), err == nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func parseIPPrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netip.PrefixFrom(p.Addr().Unmap(), unmapBits(p)).Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// unmapBits converts the prefix length of an IPv4-mapped IPv6 prefix.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		if b := p.Bits() - 96; b >= 0 {
			return b
		}
		return 0
	}
	return p.Bits()
}

// parseCondValue checks a policy value against its operator.
func parseCondValue(op condOp, v string, vars bool) (condValue, string) {
	var cv condValue
	switch op.base.kind {
	case kindString, kindStringIgnoreCase, kindStringLike:
		t, rule := parseTemplate(v, vars)
		cv.tmpl = t
		return cv, rule
	case kindArn:
		t, rule := parseTemplate(v, vars)
		if rule != "" {
			return cv, rule
		}
		if !t.hasVars() && len(strings.SplitN(v, ":", 6)) != 6 {
			return cv, "value " + strconv.Quote(v) + " must be an ARN with six colon-separated components"
		}
		cv.tmpl = t
		return cv, ""
	case kindNumeric:
		f, ok := parseNumber(v)
		if !ok {
			return cv, "value " + strconv.Quote(v) + " must be a number"
		}
		cv.num = f
	case kindDate:
		t, ok := parseDate(v)
		if !ok {
			return cv, "value " + strconv.Quote(v) + " must be an RFC 3339 date or epoch seconds"
		}
		cv.t = t
	case kindBool, kindNull:
		b, ok := parseBool(v)
		if !ok {
			return cv, "value " + strconv.Quote(v) + " must be true or false"
		}
		cv.b = b
	case kindIP:
		p, ok := parseIPPrefix(v)
		if !ok {
			return cv, "value " + strconv.Quote(v) + " must be an IP address or CIDR block"
		}
		cv.pfx = p
	}
	return cv, ""
}

// resolvedValues holds a condition's policy values after variable
// substitution (string and ARN operators only).
type resolvedValues [][]tok

// resolve substitutes the policy variables of the condition's values.
func (c *condition) resolve(ctx *evalContext) (resolvedValues, bool) {
	if !c.op.base.vars() {
		return nil, true
	}
	wild := c.op.base.kind == kindStringLike || c.op.base.kind == kindArn
	out := make(resolvedValues, len(c.values))
	for i, v := range c.values {
		ts, ok := v.tmpl.resolve(ctx, wild)
		if !ok {
			return nil, false
		}
		out[i] = ts
	}
	return out, true
}

func compare[T int | float64](a, b T, cmp cmpKind) bool {
	switch cmp {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}

// matchOne reports whether the request value v matches one of the policy
// values, in the operator's positive sense (negation is applied later).
func (c *condition) matchOne(v string, rv resolvedValues) bool {
	switch c.op.base.kind {
	case kindString:
		for _, p := range rv {
			if tokString(p) == v {
				return true
			}
		}
	case kindStringIgnoreCase:
		for _, p := range rv {
			if strings.EqualFold(tokString(p), v) {
				return true
			}
		}
	case kindStringLike:
		rs := []rune(v)
		for _, p := range rv {
			if globMatch(p, rs) {
				return true
			}
		}
	case kindArn:
		for _, p := range rv {
			if arnMatch(p, v) {
				return true
			}
		}
	case kindNumeric:
		f, ok := parseNumber(v)
		if !ok {
			return false
		}
		for _, p := range c.values {
			if compare(f, p.num, c.op.base.cmp) {
				return true
			}
		}
	case kindDate:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, p := range c.values {
			if compare(t.Compare(p.t), 0, c.op.base.cmp) {
				return true
			}
		}
	case kindBool:
		b, ok := parseBool(v)
		if !ok {
			return false
		}
		for _, p := range c.values {
			if b == p.b {
				return true
			}
		}
	case kindIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range c.values {
			if p.pfx.Contains(a) {
				return true
			}
		}
	}
	return false
}

// eval evaluates the condition on the request, given its resolved values.
func (c *condition) eval(ctx *evalContext, rv resolvedValues) bool {
	vals := ctx.lookup(c.key)
	present := len(vals) > 0
	neg := c.op.base.negated
	if c.op.base.kind == kindNull {
		for _, p := range c.values {
			if p.b == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.op.ifExists:
			return true
		case c.op.set == setAll:
			return true
		case c.op.set == setAny:
			return false
		default:
			return neg
		}
	}
	switch c.op.set {
	case setAll:
		for _, v := range vals {
			if c.matchOne(v, rv) == neg {
				return false
			}
		}
		return true
	case setAny:
		for _, v := range vals {
			if c.matchOne(v, rv) != neg {
				return true
			}
		}
		return false
	default:
		for _, v := range vals {
			if c.matchOne(v, rv) {
				return !neg
			}
		}
		return neg
	}
}
