package workload

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAML core-schema tags that the readers look at.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagStr   = "!!str"
)

// reader turns one node into a typed value, recording a problem at path and
// returning false when it cannot.
type reader[T any] func(d *decoder, n *yaml.Node, path string) (T, bool)

// keyValue is one entry of a mapping node.
type keyValue struct {
	key   string
	value *yaml.Node
	path  string
}

// scalar checks that n is a usable scalar; want describes the expected type
// for the rule ("an integer", "a string", ...).
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		d.fail(path, "YAML aliases are not supported")
	case n.Kind == yaml.ScalarNode && n.Tag == tagNull:
		d.fail(path, "must not be null; leave the key out instead")
	case n.Kind != yaml.ScalarNode:
		d.fail(path, "must be "+want)
	default:
		return true
	}
	return false
}

// mapping returns the entries of a mapping node in document order, reporting
// duplicate and non-string keys. Duplicates are dropped after the first.
func (d *decoder) mapping(n *yaml.Node, path string) ([]keyValue, bool) {
	if n.Kind == yaml.AliasNode {
		d.fail(path, "YAML aliases are not supported")
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, "must be a mapping")
		return nil, false
	}
	seen := make(map[string]bool, len(n.Content)/2)
	out := make([]keyValue, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || !utf8.ValidString(k.Value) {
			d.fail(path, "keys must be strings")
			continue
		}
		kp := joinPath(path, k.Value)
		if seen[k.Value] {
			d.fail(kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		out = append(out, keyValue{key: k.Value, value: n.Content[i+1], path: kp})
	}
	return out, true
}

// sequence returns the items of a sequence node.
func (d *decoder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if n.Kind == yaml.AliasNode {
		d.fail(path, "YAML aliases are not supported")
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "must be a list")
		return nil, false
	}
	return n.Content, true
}

// integer reads a decimal integer; floats such as 1.0 are rejected.
func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if !d.scalar(n, path, "an integer") {
		return 0, false
	}
	if n.Tag != tagInt {
		d.fail(path, "must be an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			d.fail(path, "is out of range")
		} else {
			d.fail(path, "must be a decimal integer")
		}
		return 0, false
	}
	return v, true
}

// number reads a finite number; integers are accepted.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if !d.scalar(n, path, "a number") {
		return 0, false
	}
	var f float64
	switch n.Tag {
	case tagInt:
		v, ok := d.integer(n, path)
		if !ok {
			return 0, false
		}
		f = float64(v)
	case tagFloat:
		if err := n.Decode(&f); err != nil {
			d.fail(path, "must be a number")
			return 0, false
		}
	default:
		d.fail(path, "must be a number")
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.fail(path, "must be a finite number")
		return 0, false
	}
	return f + 0, true // + 0 turns -0 into 0
}

// text reads a non-empty, valid UTF-8 string scalar.
func (d *decoder) text(n *yaml.Node, path string) (string, bool) {
	if !d.scalar(n, path, "a string") {
		return "", false
	}
	if n.Tag != tagStr {
		d.fail(path, "must be a string")
		return "", false
	}
	if !utf8.ValidString(n.Value) {
		d.fail(path, "must be valid UTF-8")
		return "", false
	}
	if strings.TrimSpace(n.Value) == "" {
		d.fail(path, "must not be empty")
		return "", false
	}
	return n.Value, true
}

// intBetween reads an integer in [lo, hi].
func intBetween(lo, hi int) reader[int] {
	return func(d *decoder, n *yaml.Node, path string) (int, bool) {
		v, ok := d.integer(n, path)
		if !ok {
			return 0, false
		}
		if v < int64(lo) || v > int64(hi) {
			d.fail(path, intRangeRule(lo, hi))
			return 0, false
		}
		return int(v), true
	}
}

// intRangeRule words the range [lo, hi].
func intRangeRule(lo, hi int) string {
	if hi == math.MaxInt32 {
		return fmt.Sprintf("must be at least %d", lo)
	}
	return fmt.Sprintf("must be between %d and %d", lo, hi)
}

// seedInt reads a non-negative 64-bit integer.
func seedInt(d *decoder, n *yaml.Node, path string) (int64, bool) {
	v, ok := d.integer(n, path)
	if ok && v < 0 {
		d.fail(path, "must be at least 0")
		return 0, false
	}
	return v, ok
}

// Number ranges used by the parameter table.
var (
	positive    = numberRange{lo: 0, loOpen: true, hi: math.Inf(1)}
	nonNegative = numberRange{lo: 0, hi: math.Inf(1)}
	fraction    = numberRange{lo: 0, hi: 1}
)

// numberRange is an interval of accepted numbers.
type numberRange struct {
	lo     float64
	loOpen bool // lo itself is excluded
	hi     float64
}

// rule words the range.
func (r numberRange) rule() string {
	switch {
	case !math.IsInf(r.hi, 1):
		return fmt.Sprintf("must be between %g and %g", r.lo, r.hi)
	case r.loOpen:
		return fmt.Sprintf("must be greater than %g", r.lo)
	default:
		return fmt.Sprintf("must be at least %g", r.lo)
	}
}

// contains reports whether f lies in the range.
func (r numberRange) contains(f float64) bool {
	if r.loOpen && f <= r.lo || f < r.lo {
		return false
	}
	return f <= r.hi
}

// numberIn reads a number in r.
func numberIn(r numberRange) reader[float64] {
	return func(d *decoder, n *yaml.Node, path string) (float64, bool) {
		f, ok := d.number(n, path)
		if ok && !r.contains(f) {
			d.fail(path, r.rule())
			return 0, false
		}
		return f, ok
	}
}

// boolean reads true or false.
func boolean(d *decoder, n *yaml.Node, path string) (bool, bool) {
	if !d.scalar(n, path, "a boolean (true or false)") {
		return false, false
	}
	var b bool
	if n.Tag != tagBool || n.Decode(&b) != nil {
		d.fail(path, "must be a boolean (true or false)")
		return false, false
	}
	return b, true
}

// nonEmptyText reads a non-empty string.
func nonEmptyText(d *decoder, n *yaml.Node, path string) (string, bool) {
	return d.text(n, path)
}

// enumKey normalises an enum spelling: lower case, '-' and ' ' read as '_'.
func enumKey(s string) string {
	return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(strings.TrimSpace(s)))
}

// oneOf reads one of choices, matched by enumKey; extra adds further
// spellings (already in enumKey form) for a choice.
func oneOf[T ~string](extra map[string]T, choices ...T) reader[T] {
	index := make(map[string]T, len(choices)+len(extra))
	names := make([]string, len(choices))
	for i, c := range choices {
		index[enumKey(string(c))] = c
		names[i] = string(c)
	}
	for k, c := range extra {
		index[k] = c
	}
	rule := "must be one of " + strings.Join(names, ", ")
	return func(d *decoder, n *yaml.Node, path string) (T, bool) {
		s, ok := d.text(n, path)
		if !ok {
			return "", false
		}
		if c, ok := index[enumKey(s)]; ok {
			return c, true
		}
		d.fail(path, rule)
		return "", false
	}
}

// stringOf adapts an enum reader to a plain string field.
func stringOf[T ~string](r reader[T]) reader[string] {
	return func(d *decoder, n *yaml.Node, path string) (string, bool) {
		v, ok := r(d, n, path)
		return string(v), ok
	}
}
