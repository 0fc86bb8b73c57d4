package workload

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// MaxDocumentBytes is the largest workload spec Parse accepts (1 MiB).
const MaxDocumentBytes = 1 << 20

// Top-level keys of a workload spec.
const (
	keyBenchmark  = "benchmark"
	keyParameters = "parameters"
	keySecrets    = "secrets"
	keyTooling    = "tooling"
	keyPlacement  = "placement" // perfleet extension
)

// topLevelKeys are the keys a document may have, for suggestions.
var topLevelKeys = []string{keyBenchmark, keyParameters, keyPlacement, keySecrets, keyTooling}

// decoder carries the state of one Parse call.
type decoder struct {
	problems
	// given maps each canonical parameter name present in the document to
	// the key it was written with (the name itself or an alias).
	given map[string]string
	// sections records which top-level sections were present.
	sections map[string]bool
	// hfTokenRef is a secret reference given as parameters.hf_token, at
	// hfTokenPath; it is moved to secrets.hf_token.
	hfTokenRef, hfTokenPath string
}

// fail records a problem.
func (d *decoder) fail(path, rule string) { d.add(path, rule) }

// Parse parses a JSON or YAML workload spec (the AIWorkloadConfigs
// WorkloadSpec.Inline string), resolves aliases to canonical names, applies
// defaults and validates. On failure it returns Errors holding every problem
// found, sorted by path; errors.Is(err, ErrInvalid) is true.
func Parse(doc []byte) (*Spec, error) {
	d := &decoder{given: map[string]string{}, sections: map[string]bool{}}
	if len(doc) > MaxDocumentBytes {
		d.fail("", fmt.Sprintf("document is %d bytes; the limit is %d (1 MiB)", len(doc), MaxDocumentBytes))
		return nil, d.result()
	}
	root, ok := d.readDocument(doc)
	if !ok {
		return nil, d.result()
	}
	s := &Spec{}
	d.decodeTop(root, s)
	d.checkRules(s)
	if len(d.list) == 0 {
		d.applyDefaults(s)
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return s, nil
}

// readDocument decodes the bytes into one YAML node tree. YAML is a superset
// of JSON, so JSON documents take the same path.
func (d *decoder) readDocument(doc []byte) (*yaml.Node, bool) {
	root, err := decodeOneNode(doc)
	switch {
	case errors.Is(err, errEmptyDocument):
		d.fail("", "document is empty")
		return nil, false
	case errors.Is(err, errSeveralDocuments):
		d.fail("", "document must hold exactly one JSON or YAML document")
		return nil, false
	case err != nil:
		d.fail("", "invalid JSON or YAML: "+err.Error())
		return nil, false
	}
	if root.Kind != yaml.MappingNode {
		d.fail("", "document must be a mapping with benchmark, parameters, secrets and tooling")
		return nil, false
	}
	return root, true
}

// Reasons decodeOneNode gives besides syntax errors.
var (
	errEmptyDocument    = errors.New("empty document")
	errSeveralDocuments = errors.New("several documents")
)

// decodeOneNode parses exactly one YAML (or JSON) document into a node
// tree, without resolving aliases.
func decodeOneNode(doc []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML library is not ours; never let it take the caller down.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("%v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	var first, second yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmptyDocument
		}
		return nil, err
	}
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		return nil, errSeveralDocuments
	}
	if first.Kind != yaml.DocumentNode || len(first.Content) != 1 {
		return nil, errEmptyDocument
	}
	return first.Content[0], nil
}

// decodeTop decodes the top-level sections.
func (d *decoder) decodeTop(root *yaml.Node, s *Spec) {
	entries, _ := d.mapping(root, "")
	for _, e := range entries {
		d.sections[e.key] = true
		switch e.key {
		case keyBenchmark:
			d.decodeBenchmark(e.value, e.path, &s.Benchmark)
		case keyTooling:
			d.decodeTooling(e.value, e.path, &s.Tooling)
		case keyParameters:
			d.decodeParameters(e.value, e.path, &s.Parameters)
		case keySecrets:
			s.Secrets = d.decodeSecrets(e.value, e.path)
		case keyPlacement:
			d.decodePlacement(e.value, e.path, &s.Placement)
		default:
			d.unknownKey(e.path, e.key, topLevelKeys, parameterHomes)
		}
	}
	if !d.sections[keyBenchmark] {
		d.fail("benchmark.type", "is required")
	}
	if d.hfTokenRef != "" {
		if _, dup := s.Secrets["hf_token"]; dup {
			d.fail(d.hfTokenPath, "must not be set together with secrets.hf_token")
		} else {
			if s.Secrets == nil {
				s.Secrets = map[string]string{}
			}
			s.Secrets["hf_token"] = d.hfTokenRef
		}
	}
}

// unknownKey records an unknown key, with a suggestion while the list of
// problems still has room.
func (d *decoder) unknownKey(path, key string, known []string, elsewhere map[string]string) {
	if d.full() {
		d.fail(path, "unknown key")
		return
	}
	d.fail(path, unknownKeyRule(key, known, elsewhere))
}

// field decodes one known key of a fixed-shape section.
type field struct {
	name   string
	decode func(n *yaml.Node, path string)
}

// fields decodes a mapping with a fixed set of keys, reporting unknown ones,
// and returns the names that were present.
func (d *decoder) fields(n *yaml.Node, path string, known []field) map[string]bool {
	entries, _ := d.mapping(n, path)
	names := make([]string, len(known))
	for i, f := range known {
		names[i] = f.name
	}
	present := make(map[string]bool, len(entries))
outer:
	for _, e := range entries {
		for _, f := range known {
			if f.name == e.key {
				present[e.key] = true
				f.decode(e.value, e.path)
				continue outer
			}
		}
		d.unknownKey(e.path, e.key, names, nil)
	}
	return present
}
