package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile reads a pricing file, YAML or JSON, into the catalog; see Load
// for the format. Errors name the file.
func (c *Catalog) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := c.load(data, "pricing file "+path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Load reads a pricing document, YAML or JSON (JSON is YAML), into the
// catalog:
//
//	gpu_hour_usd:            # on-prem $/GPU-hour by GPU model
//	  H100-80GB: 2.10
//	  NVIDIA L4: 0.35        # any spelling CanonicalGPU accepts
//	instances:               # overrides or additions: ml.* types or on-prem classes
//	  lab-8xH100: {usd_per_hour: 14.0}                        # every region
//	  ml.g5.12xlarge: {region: us-east-1, usd_per_hour: 6.50}
//	  ml.g6.12xlarge:                                         # several regions
//	    - {region: us-east-1, usd_per_hour: 5.10}
//	    - {region: eu-west-1, usd_per_hour: 5.70}
//
// Both sections are optional and an empty document changes nothing.
// Prices are US dollars and must be non-negative numbers. Load rejects
// unknown keys, duplicate keys, two spellings of one GPU model, missing
// or invalid prices and malformed YAML, naming the line and key; it then
// changes nothing. Figures loaded later replace earlier ones for the same
// key and region.
func (c *Catalog) Load(data []byte) error { return c.load(data, "pricing file") }

// instancePrice is one parsed instances entry.
type instancePrice struct {
	key, region string
	usd         float64
}

// gpuPrice is one parsed gpu_hour_usd entry.
type gpuPrice struct {
	model string
	usd   float64
}

// fileParser collects a pricing document's entries and problems.
type fileParser struct {
	instances []instancePrice
	gpus      []gpuPrice
	problems  []string
}

func (p *fileParser) problem(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.problems = append(p.problems, fmt.Sprintf("line %d: %s", n.Line, msg))
}

func (c *Catalog) load(data []byte, origin string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("invalid pricing file: %w", err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return fmt.Errorf("invalid pricing file: line %d: more than one YAML document", next.Line)
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("invalid pricing file: %w", err)
	}

	var p fileParser
	p.document(&doc)
	if len(p.problems) > 0 {
		return errors.New(strings.Join(p.problems, "; "))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range p.gpus {
		c.setGPUHourLocked(g.model, figure{usd: g.usd, origin: origin})
	}
	for _, in := range p.instances {
		c.setLocked(in.key, in.region, figure{usd: in.usd, origin: origin})
	}
	return nil
}

// document parses the top level.
func (p *fileParser) document(doc *yaml.Node) {
	root := deref(doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = deref(root.Content[0])
	}
	if isNull(root) {
		return
	}
	p.mapping(root, "", "gpu_hour_usd, instances", func(key string, k, v *yaml.Node) {
		switch key {
		case "gpu_hour_usd":
			p.gpuHours(v)
		case "instances":
			p.instanceSection(v)
		default:
			p.problem(k, "", "unknown key %q (want gpu_hour_usd or instances)", key)
		}
	})
}

// gpuHours parses gpu_hour_usd.
func (p *fileParser) gpuHours(n *yaml.Node) {
	const path = "gpu_hour_usd"
	seen := map[string]string{} // canonical model → spelling
	p.mapping(n, path, "GPU model: $/GPU-hour", func(name string, k, v *yaml.Node) {
		model, _ := CanonicalGPU(name)
		if model == "" {
			p.problem(k, path, "empty GPU model")
			return
		}
		if prev, dup := seen[model]; dup {
			p.problem(k, path, "%q and %q are both GPU model %s; keep one", prev, name, model)
			return
		}
		seen[model] = name
		if usd, ok := p.usd(v, path+"."+name); ok {
			p.gpus = append(p.gpus, gpuPrice{model: name, usd: usd})
		}
	})
}

// instanceSection parses instances.
func (p *fileParser) instanceSection(n *yaml.Node) {
	p.mapping(n, "instances", "instance type: {region, usd_per_hour}", func(key string, k, v *yaml.Node) {
		path := "instances." + key
		if strings.TrimSpace(key) == "" {
			p.problem(k, "instances", "empty instance type")
			return
		}
		key = strings.TrimSpace(key)
		if v.Kind != yaml.SequenceNode {
			p.instance(key, v, path, nil)
			return
		}
		regions := map[string]bool{}
		for i, item := range v.Content {
			p.instance(key, deref(item), fmt.Sprintf("%s[%d]", path, i), regions)
		}
	})
}

// instance parses one {region, usd_per_hour} mapping. regions, when not
// nil, holds the regions already priced for the same key.
func (p *fileParser) instance(key string, n *yaml.Node, path string, regions map[string]bool) {
	var region string
	var usd float64
	var hasUSD, ok bool
	if !p.mapping(n, path, "{region, usd_per_hour}", func(field string, k, v *yaml.Node) {
		switch field {
		case "region":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" && !isNull(v) {
				p.problem(v, path+".region", "must be a region name such as us-east-1")
				return
			}
			region = strings.TrimSpace(v.Value)
		case "usd_per_hour":
			hasUSD = true
			usd, ok = p.usd(v, path+".usd_per_hour")
		default:
			p.problem(k, path, "unknown key %q (want region or usd_per_hour)", field)
		}
	}) {
		return
	}
	if !hasUSD {
		p.problem(n, path, "usd_per_hour is required")
		return
	}
	if regions != nil {
		if regions[region] {
			where := "every region"
			if region != "" {
				where = region
			}
			p.problem(n, path, "%s is priced twice for %s", key, where)
			return
		}
		regions[region] = true
	}
	if ok {
		p.instances = append(p.instances, instancePrice{key: key, region: region, usd: usd})
	}
}

// mapping calls f for each key and value of a mapping node, in order,
// rejecting other nodes, non-scalar keys and duplicate keys. It reports
// whether n was a mapping.
func (p *fileParser) mapping(n *yaml.Node, path, want string, f func(key string, k, v *yaml.Node)) bool {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.problem(n, path, "must be a mapping (%s), got %s", want, describe(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.problem(k, path, "keys must be names, got %s", describe(k))
			continue
		}
		if seen[k.Value] {
			p.problem(k, path, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		f(k.Value, k, v)
	}
	return true
}

// usd parses a price in US dollars.
func (p *fileParser) usd(n *yaml.Node, path string) (float64, bool) {
	var usd float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&usd) != nil {
		p.problem(n, path, "must be a non-negative number of US dollars, got %s", describe(n))
		return 0, false
	}
	if err := checkUSD(usd); err != nil {
		p.problem(n, path, "must be a non-negative number of US dollars, got %s", n.Value)
		return 0, false
	}
	return usd, true
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an explicit or implicit null.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names a node's kind and value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}
