package workload

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxExtraInputsDepth bounds how deeply extra_inputs values may nest.
const maxExtraInputsDepth = 16

// decodeExtraInputs reads `extra_inputs`: AIPerf's space-separated
// "key:value" string (a string starting with '{' is read as a JSON object,
// as AIPerf does), or a mapping. Values are typed: booleans, numbers
// (int64 when whole, float64 otherwise), strings, null, lists and mappings.
func decodeExtraInputs(d *decoder, n *yaml.Node, path string, p *Parameters) {
	var out map[string]any
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == tagStr && strings.HasPrefix(strings.TrimSpace(n.Value), "{"):
		inner, err := decodeOneNode([]byte(n.Value))
		if err != nil {
			d.fail(path, "must be key:value pairs or a JSON object")
			return
		}
		out = d.extraInputsMapping(inner, path, 0)
	case n.Kind == yaml.MappingNode:
		out = d.extraInputsMapping(n, path, 0)
	default:
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		out = d.extraInputsPairs(s, path)
	}
	for k, v := range out {
		d.checkExtraInput(joinPath(path, k), k, v)
	}
	if len(out) > 0 {
		p.ExtraInputs = out
	}
}

// extraInputsPairs reads "key:value key:value".
func (d *decoder) extraInputsPairs(s, path string) map[string]any {
	out := map[string]any{}
	for _, pair := range strings.Fields(s) {
		key, raw, found := strings.Cut(pair, ":")
		if !found || key == "" || raw == "" {
			d.fail(path, fmt.Sprintf("entry %q must be key:value", pair))
			continue
		}
		if _, dup := out[key]; dup {
			d.fail(joinPath(path, key), "duplicate key")
			continue
		}
		out[key] = typedWord(raw)
	}
	return out
}

// typedWord types one value of the key:value form.
func typedWord(raw string) any {
	switch raw {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) &&
		strings.ContainsAny(raw, "0123456789") && !strings.ContainsAny(raw, "xXpP_") {
		return wholeOrFloat(f)
	}
	return raw
}

// wholeOrFloat stores a whole number that fits as int64, anything else as
// float64, so 128 and 128.0 compare equal after a round trip.
func wholeOrFloat(f float64) any {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int64(f)
	}
	return f
}

// extraInputsMapping converts a mapping node to map[string]any.
func (d *decoder) extraInputsMapping(n *yaml.Node, path string, depth int) map[string]any {
	entries, ok := d.mapping(n, path)
	if !ok {
		return nil
	}
	out := make(map[string]any, len(entries))
	for _, e := range entries {
		if v, ok := d.extraInputsValue(e.value, e.path, depth+1); ok {
			out[e.key] = v
		}
	}
	return out
}

// extraInputsValue converts any node to a plain Go value.
func (d *decoder) extraInputsValue(n *yaml.Node, path string, depth int) (any, bool) {
	if depth > maxExtraInputsDepth {
		d.fail(path, fmt.Sprintf("nests deeper than %d levels", maxExtraInputsDepth))
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.extraInputsMapping(n, path, depth), true
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, ok := d.extraInputsValue(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if !ok {
				return nil, false
			}
			list = append(list, v)
		}
		return list, true
	case yaml.ScalarNode:
	default:
		d.fail(path, "YAML aliases are not supported")
		return nil, false
	}
	switch n.Tag {
	case tagNull:
		return nil, true
	case tagBool:
		return boolean(d, n, path)
	case tagInt, tagFloat:
		f, ok := d.number(n, path)
		if n.Tag == tagInt && ok {
			i, _ := d.integer(n, path)
			return i, true
		}
		return wholeOrFloat(f), ok
	default:
		if !utf8.ValidString(n.Value) {
			d.fail(path, "must be valid UTF-8")
			return nil, false
		}
		return n.Value, true
	}
}

// checkExtraInput type-checks the extra inputs perfleet itself interprets.
func (d *decoder) checkExtraInput(path, key string, v any) {
	switch key {
	case "stream":
		d.fail(path, "must not be set here; use parameters.streaming")
	case "model":
		d.fail(path, "must not be set here; use parameters.model")
	case "ignore_eos":
		if _, ok := v.(bool); !ok {
			d.fail(path, "must be a boolean (true or false)")
		}
	case "max_tokens", "max_completion_tokens", "min_tokens":
		i, ok := v.(int64)
		lo := int64(1)
		if key == "min_tokens" {
			lo = 0
		}
		if !ok || i < lo {
			d.fail(path, fmt.Sprintf("must be an integer of at least %d", lo))
		}
	case "payload_template", "response_field":
		if s, ok := v.(string); !ok || strings.TrimSpace(s) == "" {
			d.fail(path, "must be a non-empty string")
		}
	}
}

// encodeExtraInputs writes the extra inputs back as a mapping.
func encodeExtraInputs(p *Parameters) (any, bool) {
	return maps.Clone(p.ExtraInputs), len(p.ExtraInputs) > 0
}
