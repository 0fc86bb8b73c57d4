package workload

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// decodeConcurrency reads `concurrency`: an integer, or a list of distinct
// integers that makes the run a sweep.
func decodeConcurrency(d *decoder, n *yaml.Node, path string, p *Parameters) {
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.MappingNode {
			d.fail(path, "must be an integer or a list of integers")
			return
		}
		if v, ok := readConcurrency(d, n, path); ok {
			p.Concurrency = []int{v}
		}
		return
	}
	items, _ := d.sequence(n, path)
	if len(items) == 0 || len(items) > maxLevels {
		d.fail(path, fmt.Sprintf("must be a list of 1 to %d values", maxLevels))
		return
	}
	seen := make(map[int]bool, len(items))
	values := make([]int, 0, len(items))
	ok := true
	for i, item := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		v, good := readConcurrency(d, item, ip)
		if !good {
			ok = false
			continue
		}
		if seen[v] {
			d.fail(ip, fmt.Sprintf("duplicate concurrency %d", v))
			ok = false
			continue
		}
		seen[v] = true
		values = append(values, v)
	}
	if ok {
		p.Concurrency, p.ConcurrencySweep = values, true
	}
}

// encodeConcurrency writes a list for a sweep and an integer otherwise.
func encodeConcurrency(p *Parameters) (any, bool) {
	switch {
	case len(p.Concurrency) == 0:
		return nil, false
	case p.ConcurrencySweep:
		return append([]int(nil), p.Concurrency...), true
	default:
		return p.Concurrency[0], true
	}
}

// decodePhases reads the `phases` extension: a non-empty list of
// {initial_users, spawn_rate, duration_seconds}.
func decodePhases(d *decoder, n *yaml.Node, path string, p *Parameters) {
	items, ok := d.sequence(n, path)
	if !ok {
		return
	}
	if len(items) == 0 || len(items) > maxLevels {
		d.fail(path, fmt.Sprintf("must be a list of 1 to %d phases", maxLevels))
		return
	}
	phases := make([]Phase, 0, len(items))
	for i, item := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		var ph Phase
		got := d.fields(item, ip, []field{
			{"initial_users", func(n *yaml.Node, fp string) { ph.InitialUsers, _ = readConcurrency(d, n, fp) }},
			{"spawn_rate", func(n *yaml.Node, fp string) { ph.SpawnRate, _ = readNonNegative(d, n, fp) }},
			{"duration_seconds", func(n *yaml.Node, fp string) { ph.DurationSeconds, _ = intBetween(1, 86400)(d, n, fp) }},
		})
		if item.Kind != yaml.MappingNode {
			continue
		}
		for _, req := range []string{"initial_users", "duration_seconds"} {
			if !got[req] {
				d.fail(joinPath(ip, req), "is required")
			}
		}
		phases = append(phases, ph)
	}
	p.Phases = phases
}

// encodePhases writes the phases back as a list of mappings.
func encodePhases(p *Parameters) (any, bool) {
	if len(p.Phases) == 0 {
		return nil, false
	}
	out := make([]any, len(p.Phases))
	for i, ph := range p.Phases {
		out[i] = map[string]any{
			"initial_users":    ph.InitialUsers,
			"spawn_rate":       ph.SpawnRate,
			"duration_seconds": ph.DurationSeconds,
		}
	}
	return out, true
}

// decodeStairs reads the `stairs` extension; every key is required.
func decodeStairs(d *decoder, n *yaml.Node, path string, p *Parameters) {
	var st Stairs
	got := d.fields(n, path, []field{
		{"users_per_step", func(n *yaml.Node, fp string) { st.UsersPerStep, _ = readConcurrency(d, n, fp) }},
		{"step_duration_seconds", func(n *yaml.Node, fp string) { st.StepDurationSeconds, _ = intBetween(1, 86400)(d, n, fp) }},
		{"number_of_steps", func(n *yaml.Node, fp string) { st.NumberOfSteps, _ = intBetween(1, 1000)(d, n, fp) }},
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	for _, req := range []string{"users_per_step", "step_duration_seconds", "number_of_steps"} {
		if !got[req] {
			d.fail(joinPath(path, req), "is required")
		}
	}
	if st.UsersPerStep > 0 && st.NumberOfSteps > 0 && st.UsersPerStep*st.NumberOfSteps > maxConcurrency {
		d.fail(path, fmt.Sprintf("reaches %d users in its last step; the limit is %d", st.UsersPerStep*st.NumberOfSteps, maxConcurrency))
	}
	p.Stairs = &st
}

// encodeStairs writes the stairs back as a mapping.
func encodeStairs(p *Parameters) (any, bool) {
	if p.Stairs == nil {
		return nil, false
	}
	return map[string]any{
		"users_per_step":        p.Stairs.UsersPerStep,
		"step_duration_seconds": p.Stairs.StepDurationSeconds,
		"number_of_steps":       p.Stairs.NumberOfSteps,
	}, true
}
