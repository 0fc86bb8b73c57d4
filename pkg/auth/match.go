package auth

import (
	"strconv"
	"strings"
)

type tokKind uint8

const (
	tokLit  tokKind = iota // a literal rune
	tokStar                // '*': any run of characters, possibly empty
	tokOne                 // '?': exactly one character
)

// tok is one element of a pattern ready for matching.
type tok struct {
	kind tokKind
	r    rune
}

// globMatch reports whether s matches the whole pattern p. Wildcards match
// any character, ':' and '/' included.
func globMatch(p []tok, s []rune) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch t := p[pi]; t.kind {
			case tokStar:
				starP, starS = pi, si
				pi++
				continue
			case tokOne:
				pi++
				si++
				continue
			default:
				if t.r == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star absorb one more character and retry.
		starS++
		si = starS
		pi = starP + 1
	}
	for pi < len(p) && p[pi].kind == tokStar {
		pi++
	}
	return pi == len(p)
}

// wildTokens turns policy text into tokens, '*' and '?' being wildcards.
func wildTokens(s string) []tok {
	out := make([]tok, 0, len(s))
	for _, r := range s {
		switch r {
		case '*':
			out = append(out, tok{kind: tokStar})
		case '?':
			out = append(out, tok{kind: tokOne})
		default:
			out = append(out, tok{r: r})
		}
	}
	return out
}

func litTokens(out []tok, s string) []tok {
	for _, r := range s {
		out = append(out, tok{r: r})
	}
	return out
}

// segKind says what a template segment is.
type segKind uint8

const (
	segText    segKind = iota // policy text; '*' and '?' are wildcards where the operator has them
	segLiteral                // text from ${*}, ${?}, ${$}: never a wildcard
	segVar                    // a policy variable
)

type segment struct {
	kind   segKind
	text   string // segText, segLiteral: the text; segVar: the canonical key
	def    string // segVar: the default value
	hasDef bool
}

// template is a policy string (a Resource or a condition value) that may
// contain policy variables.
type template struct {
	raw  string
	segs []segment
}

func (t template) hasVars() bool {
	for _, s := range t.segs {
		if s.kind == segVar {
			return true
		}
	}
	return false
}

// parseTemplate splits s into text and policy variables. With vars false
// (Version 2008-10-17, or an operator without variables), s is all text.
func parseTemplate(s string, vars bool) (template, string) {
	t := template{raw: s}
	if !vars {
		t.segs = []segment{{kind: segText, text: s}}
		return t, ""
	}
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		if i > 0 {
			t.segs = append(t.segs, segment{kind: segText, text: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, "unterminated policy variable in " + strconv.Quote(s)
		}
		body := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		seg, rule := parseVariable(body)
		if rule != "" {
			return t, rule
		}
		t.segs = append(t.segs, seg)
	}
	if rest != "" {
		t.segs = append(t.segs, segment{kind: segText, text: rest})
	}
	return t, ""
}

// parseVariable parses the inside of ${…}: "*", "?", "$", "key" or
// "key, 'default'".
func parseVariable(body string) (segment, string) {
	b := strings.TrimSpace(body)
	switch b {
	case "*", "?", "$":
		return segment{kind: segLiteral, text: b}, ""
	}
	seg := segment{kind: segVar}
	name := b
	if k, d, ok := strings.Cut(b, ","); ok {
		name = strings.TrimSpace(k)
		d = strings.TrimSpace(d)
		if len(d) < 2 || d[0] != '\'' || d[len(d)-1] != '\'' || strings.Contains(d[1:len(d)-1], "'") {
			return seg, "policy variable ${" + body + "}: the default value must be in single quotes, as in ${aws:PrincipalTag/team, 'none'}"
		}
		seg.def, seg.hasDef = d[1:len(d)-1], true
	}
	if name == "" {
		return seg, "empty policy variable ${" + body + "}"
	}
	key, rule := canonicalKey(name)
	if rule != "" {
		return seg, "policy variable ${" + body + "}: " + rule
	}
	if multiValuedKeys[key] {
		return seg, "policy variable ${" + body + "}: " + strconv.Quote(name) + " is multi-valued and cannot be a variable"
	}
	seg.text = key
	return seg, ""
}

// resolve substitutes the variables of t from the request. Text segments
// become wildcards when wild is set; substituted values and ${*}-style
// escapes are always literal, so a tag value of "*" cannot widen a pattern.
// ok is false when a variable has no single value and no default.
func (t template) resolve(c *evalContext, wild bool) (out []tok, ok bool) {
	for _, s := range t.segs {
		switch s.kind {
		case segText:
			if wild {
				out = append(out, wildTokens(s.text)...)
			} else {
				out = litTokens(out, s.text)
			}
		case segLiteral:
			out = litTokens(out, s.text)
		case segVar:
			vals := c.lookup(s.text)
			switch {
			case len(vals) == 1:
				out = litTokens(out, vals[0])
			case s.hasDef:
				out = litTokens(out, s.def)
			default:
				return nil, false
			}
		}
	}
	return out, true
}

// tokString returns the characters of literal-only tokens.
func tokString(ts []tok) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteRune(t.r)
	}
	return b.String()
}

// splitTokens splits a pattern at literal ':' into at most n parts.
func splitTokens(ts []tok, n int) [][]tok {
	var parts [][]tok
	start := 0
	for i, t := range ts {
		if len(parts) == n-1 {
			break
		}
		if t.kind == tokLit && t.r == ':' {
			parts = append(parts, ts[start:i])
			start = i + 1
		}
	}
	return append(parts, ts[start:])
}

// arnMatch matches an ARN against an ARN pattern the way ArnLike does: each
// of the six colon-separated components separately, with wildcards that do
// not cross a component boundary (except in the last, resource component).
func arnMatch(p []tok, s string) bool {
	pp := splitTokens(p, 6)
	sp := strings.SplitN(s, ":", 6)
	if len(pp) != 6 || len(sp) != 6 {
		return false
	}
	for i := range pp {
		if !globMatch(pp[i], []rune(sp[i])) {
			return false
		}
	}
	return true
}
