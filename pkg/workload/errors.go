package workload

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid is the sentinel every validation failure matches:
// errors.Is(err, ErrInvalid) is true for the Errors that Parse returns.
var ErrInvalid = errors.New("invalid workload spec")

// FieldError names one offending key path and the rule it broke.
//
// Path uses dots between mapping keys and [i] for list items, spelled the way
// the document spelled them (an alias stays an alias), e.g.
// "parameters.concurrency", "parameters.concurrency[2]",
// "parameters.phases[0].duration_seconds" or "benchmark.type". An empty Path
// means the document as a whole (size, syntax, not a mapping).
type FieldError struct {
	// Path is the key path of the offending value; empty for the whole document.
	Path string
	// Rule says what was wrong, in words meant for the person who wrote the spec.
	Rule string
}

// Error returns "path: rule", or just the rule when the path is empty.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Rule
	}
	return e.Path + ": " + e.Rule
}

// Errors is the list of all problems found in one document, sorted by Path.
// Parse returns it (never a bare string error) when the document is invalid.
type Errors []*FieldError

// Error joins every problem: "invalid workload spec: a: rule; b: rule".
func (e Errors) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, fe := range e {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid, so errors.Is(err, ErrInvalid) works.
func (e Errors) Is(target error) bool { return target == ErrInvalid }

// MaxProblems is the most problems Parse lists for one document; the rest
// are counted in one last document-level problem.
const MaxProblems = 100

// problems collects FieldErrors while a document is decoded and checked.
type problems struct {
	list    Errors
	dropped int
}

// add records one problem, or counts it once MaxProblems are listed.
func (p *problems) add(path, rule string) {
	if p.full() {
		p.dropped++
		return
	}
	p.list = append(p.list, &FieldError{Path: path, Rule: rule})
}

// full reports whether no further problem will be listed, so callers can
// skip the work of wording one.
func (p *problems) full() bool { return len(p.list) >= MaxProblems }

// at reports whether a problem was already recorded at exactly path.
func (p *problems) at(path string) bool {
	for _, fe := range p.list {
		if fe.Path == path {
			return true
		}
	}
	return false
}

// result returns nil when nothing was found, otherwise the problems sorted by
// path (stable, so several rules on one path keep the order they were found
// in) with exact duplicates removed. Past MaxProblems a document-level
// problem says how many more there were.
func (p *problems) result() error {
	if len(p.list) == 0 {
		return nil
	}
	if p.dropped > 0 {
		p.list = append(p.list, &FieldError{Rule: fmt.Sprintf("%d more problems not listed", p.dropped)})
		p.dropped = 0
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Path < p.list[j].Path })
	out := make(Errors, 0, len(p.list))
	for _, fe := range p.list {
		if n := len(out); n > 0 && *out[n-1] == *fe {
			continue
		}
		out = append(out, fe)
	}
	return out
}

// joinPath appends a mapping key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKeyRule is the rule for a key that the section does not define. It
// names the closest known key when that one is only a small edit away, and
// points at the right section when the key belongs to another one.
func unknownKeyRule(key string, known []string, elsewhere map[string]string) string {
	if best := closest(key, known); best != "" {
		return fmt.Sprintf("unknown key; did you mean %q?", best)
	}
	if full, ok := elsewhere[key]; ok {
		return fmt.Sprintf("unknown key; did you mean %q?", full)
	}
	return "unknown key"
}

// closest returns the candidate nearest to key by edit distance (case
// ignored), or "" when none is close enough to be a likely typo: at most two
// edits, or a quarter of the key's length for long keys.
func closest(key string, candidates []string) string {
	k := strings.ToLower(key)
	limit := max(2, len(k)/4)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if diff := len(k) - len(c); diff > limit || -diff > limit {
			continue // the lengths alone put c out of reach
		}
		d := editDistance(k, strings.ToLower(c))
		if d < bestDist || (d == bestDist && best != "" && c < best) {
			best, bestDist = c, d
		}
	}
	if bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, over bytes.
func editDistance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		// Keys this long are never typos of ours; skip the quadratic work.
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggestion is `; did you mean "x"?` when a close name exists, else "".
func suggestion(name string, known []string) string {
	if best := closest(name, known); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}
