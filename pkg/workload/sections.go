package workload

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decodeBenchmark decodes the benchmark section; type is required.
func (d *decoder) decodeBenchmark(n *yaml.Node, path string, b *Benchmark) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "must be a mapping")
		return
	}
	present := d.fields(n, path, []field{{"type", func(n *yaml.Node, p string) {
		if v, ok := d.text(n, p); ok {
			if !strings.EqualFold(strings.TrimSpace(v), BenchmarkTypeAIPerf) {
				d.fail(p, fmt.Sprintf("must be %q", BenchmarkTypeAIPerf))
				return
			}
			b.Type = BenchmarkTypeAIPerf
		}
	}}})
	if !present["type"] {
		d.fail(joinPath(path, "type"), "is required")
	}
}

// versionPattern accepts AIPerf versions such as 0.8, 0.8.0 and 0.11.0rc1.
var versionPattern = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){0,2}([.+-]?[0-9A-Za-z]+)*$`)

// decodeTooling decodes the tooling section.
func (d *decoder) decodeTooling(n *yaml.Node, path string, t *Tooling) {
	readStandard := oneOf(map[string]APIStandard{"kserve_v2": APIStandardKServe},
		APIStandardOpenAI, APIStandardKServe, APIStandardHTTP)
	d.fields(n, path, []field{
		{"api_standard", func(n *yaml.Node, p string) {
			t.APIStandard, _ = readStandard(d, n, p)
		}},
		{"version", func(n *yaml.Node, p string) {
			// YAML reads `version: 0.8` as a number; keep the text as written.
			if !d.scalar(n, p, "a version string") {
				return
			}
			if (n.Tag != tagStr && n.Tag != tagInt && n.Tag != tagFloat) || !versionPattern.MatchString(n.Value) || len(n.Value) > 64 {
				d.fail(p, `must be a version such as "0.8.0"`)
				return
			}
			t.Version = n.Value
		}},
	})
}

// secretNames are the parameters a secret may be given for: the Hugging
// Face token for gated tokenizers and the target's API key (sent as
// Authorization: Bearer), a perfleet extension.
var secretNames = []string{"api_key", "hf_token"}

// Secret reference forms: an AWS Secrets Manager ARN or a perfleet-stored
// secret.
var (
	secretsManagerARN = regexp.MustCompile(`^arn:aws(-cn|-us-gov|-iso|-iso-b)?:secretsmanager:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$`)
	perfleetSecret    = regexp.MustCompile(`^perfleet:secret/[A-Za-z0-9][A-Za-z0-9/_+=.@-]{0,255}$`)
)

// decodeSecrets reads the secrets section: parameter name → reference.
func (d *decoder) decodeSecrets(n *yaml.Node, path string) map[string]string {
	entries, _ := d.mapping(n, path)
	var out map[string]string
	for _, e := range entries {
		if !containsString(secretNames, e.key) {
			if rule := unknownKeyRule(e.key, secretNames, nil); rule != "unknown key" {
				d.fail(e.path, rule)
			} else {
				d.fail(e.path, rule+"; secrets may be given for "+strings.Join(secretNames, ", "))
			}
			continue
		}
		ref, ok := d.text(e.value, e.path)
		if !ok {
			continue
		}
		if !IsSecretReference(ref) {
			d.fail(e.path, "must be a secret reference: arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name> "+
				"or perfleet:secret/<name>, never the secret itself")
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[e.key] = ref
	}
	return out
}

// IsSecretReference reports whether ref is an accepted secret reference:
// arn:aws:secretsmanager:<region>:<12 digits>:secret:<name> or
// perfleet:secret/<name>.
func IsSecretReference(ref string) bool {
	return secretsManagerARN.MatchString(ref) || perfleetSecret.MatchString(ref)
}

// containsString reports whether list holds s.
func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// labelKey is a label name in an agent selector (Kubernetes label style).
var labelKey = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$`)

// decodePlacement reads the top-level placement extension.
func (d *decoder) decodePlacement(n *yaml.Node, path string, pl *Placement) {
	d.fields(n, path, []field{
		{"agents", func(n *yaml.Node, p string) {
			if n.Kind == yaml.ScalarNode && n.Tag == tagStr {
				if strings.EqualFold(strings.TrimSpace(n.Value), "all") {
					pl.AllAgents = true
				} else {
					d.fail(p, `must be a positive integer or "all"`)
				}
				return
			}
			pl.Agents, _ = intBetween(1, 10000)(d, n, p)
		}},
		{"selector", func(n *yaml.Node, p string) {
			entries, _ := d.mapping(n, p)
			for _, e := range entries {
				if !labelKey.MatchString(e.key) {
					d.fail(e.path, "must be a label name: letters, digits, '.', '_', '-', '/', starting and ending with a letter or digit")
					continue
				}
				if !d.scalar(e.value, e.path, "a string") {
					continue
				}
				if e.value.Tag != tagStr || len(e.value.Value) > 256 || !utf8.ValidString(e.value.Value) {
					d.fail(e.path, "must be a string of at most 256 bytes")
					continue
				}
				if pl.Selector == nil {
					pl.Selector = map[string]string{}
				}
				pl.Selector[e.key] = e.value.Value
			}
		}},
		{"streams_per_agent", func(n *yaml.Node, p string) {
			pl.StreamsPerAgent, _ = intBetween(1, maxConcurrency)(d, n, p)
		}},
	})
}

// placementCanonical writes the placement back; nil when it is the zero value.
func placementCanonical(pl Placement) map[string]any {
	out := map[string]any{}
	switch {
	case pl.AllAgents:
		out["agents"] = "all"
	case pl.Agents > 0:
		out["agents"] = pl.Agents
	}
	if len(pl.Selector) > 0 {
		out["selector"] = pl.Selector
	}
	if pl.StreamsPerAgent > 0 {
		out["streams_per_agent"] = pl.StreamsPerAgent
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
