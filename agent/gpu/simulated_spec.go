package gpu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxSimulatedGPUs bounds the count of a simulated spec.
const MaxSimulatedGPUs = 64

// Model describes a GPU model for simulation. The table's keys and aliases
// match pkg/llmsim's GPU types, and so do its idle and TDP figures where
// both list a model.
type Model struct {
	// Key is the canonical spec name ("H100-80GB").
	Key string
	// Name is the product name NVML reports ("NVIDIA H100 80GB HBM3").
	Name string
	// MemoryBytes is the memory total NVML reports for one device.
	MemoryBytes uint64
	// IdleWatts is the board power with nothing running.
	IdleWatts float64
	// TDPWatts is the board power limit, reached at full load.
	TDPWatts float64
	// IdleSMClockMHz is the SM clock with nothing running.
	IdleSMClockMHz uint32
	// MaxSMClockMHz is the maximum (boost) SM clock, held under load.
	MaxSMClockMHz uint32
	// Aliases are other accepted spec names.
	Aliases []string
}

const mib = 1 << 20

// models is the simulated-GPU table, sorted by key. Memory totals are what
// nvidia-smi shows on the SXM/PCIe boards clouds rent.
var models = []Model{
	{Key: "A100-40GB", Name: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40960 * mib, IdleWatts: 45, TDPWatts: 400,
		IdleSMClockMHz: 210, MaxSMClockMHz: 1410, Aliases: []string{"A100-SXM-40GB"}},
	{Key: "A100-80GB", Name: "NVIDIA A100-SXM4-80GB", MemoryBytes: 81920 * mib, IdleWatts: 50, TDPWatts: 400,
		IdleSMClockMHz: 210, MaxSMClockMHz: 1410, Aliases: []string{"A100", "A100-SXM-80GB"}},
	{Key: "A10G", Name: "NVIDIA A10G", MemoryBytes: 23028 * mib, IdleWatts: 20, TDPWatts: 300,
		IdleSMClockMHz: 210, MaxSMClockMHz: 1710, Aliases: []string{"A10G-24GB"}},
	{Key: "H100-80GB", Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 81559 * mib, IdleWatts: 70, TDPWatts: 700,
		IdleSMClockMHz: 345, MaxSMClockMHz: 1980, Aliases: []string{"H100", "H100-SXM", "H100-SXM-80GB"}},
	{Key: "H200-141GB", Name: "NVIDIA H200", MemoryBytes: 143771 * mib, IdleWatts: 75, TDPWatts: 700,
		IdleSMClockMHz: 345, MaxSMClockMHz: 1980, Aliases: []string{"H200"}},
	{Key: "L4", Name: "NVIDIA L4", MemoryBytes: 23034 * mib, IdleWatts: 16, TDPWatts: 72,
		IdleSMClockMHz: 210, MaxSMClockMHz: 2040, Aliases: []string{"L4-24GB"}},
	{Key: "L40S", Name: "NVIDIA L40S", MemoryBytes: 46068 * mib, IdleWatts: 35, TDPWatts: 350,
		IdleSMClockMHz: 210, MaxSMClockMHz: 2520, Aliases: []string{"L40S-48GB"}},
	{Key: "T4", Name: "Tesla T4", MemoryBytes: 15360 * mib, IdleWatts: 10, TDPWatts: 70,
		IdleSMClockMHz: 300, MaxSMClockMHz: 1590, Aliases: []string{"T4-16GB"}},
}

// Models returns the simulated-GPU table, sorted by key.
func Models() []Model {
	out := slices.Clone(models)
	for i := range out {
		out[i].Aliases = slices.Clone(out[i].Aliases)
	}
	return out
}

// ModelKeys returns the canonical keys of the table, sorted.
func ModelKeys() []string {
	keys := make([]string, len(models))
	for i, m := range models {
		keys[i] = m.Key
	}
	return keys
}

// LookupModel finds a model by key or alias, ignoring case.
func LookupModel(name string) (Model, bool) {
	for _, m := range models {
		if strings.EqualFold(m.Key, name) || slices.ContainsFunc(m.Aliases, func(a string) bool {
			return strings.EqualFold(a, name)
		}) {
			return m, true
		}
	}
	return Model{}, false
}

// modelByName finds a model by the product name NVML reports.
func modelByName(name string) (Model, bool) {
	for _, m := range models {
		if strings.EqualFold(m.Name, name) {
			return m, true
		}
	}
	return Model{}, false
}

// SimSpec is a parsed simulated-GPU spec: Count GPUs of one Model.
type SimSpec struct {
	// Count is the number of GPUs, 1 to MaxSimulatedGPUs.
	Count int
	// Model is the GPU model.
	Model Model
}

// String renders s in canonical form ("8xH100-80GB").
func (s SimSpec) String() string {
	return fmt.Sprintf("%dx%s", s.Count, s.Model.Key)
}

// Summary summarises the spec as Inventory.Summary would the simulated
// inventory.
func (s SimSpec) Summary() Summary {
	return Summary{Count: s.Count, Model: s.Model.Key, MemoryMiB: s.Model.MemoryBytes >> 20,
		Source: SourceSimulated}
}

// ParseSimulated parses a simulated-GPU spec "[N x]MODEL": "8xH100-80GB",
// "2xA100-80GB", "4xL40S", "1xL4", or "A10G" for one GPU. MODEL is a key of
// ModelKeys or an alias ("H100"), ignoring case; N is 1 to
// MaxSimulatedGPUs. Errors wrap ErrSpec and name the bad part, e.g.
// `unknown GPU model "H900"; known: A100-40GB, …`.
func ParseSimulated(spec string) (SimSpec, error) {
	s := strings.TrimSpace(spec)
	fail := func(format string, args ...any) (SimSpec, error) {
		return SimSpec{}, fmt.Errorf("%w %q: %s", ErrSpec, spec, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; want [N x]MODEL, e.g. 8xH100-80GB")
	}
	count, model := 1, s
	// Models never start with a digit, so a leading digit means "N x".
	if s[0] >= '0' && s[0] <= '9' {
		i := strings.IndexAny(s, "xX")
		if i < 0 {
			return fail("missing \"x\" between count and model; want [N x]MODEL, e.g. 8xH100-80GB")
		}
		n, err := strconv.Atoi(strings.TrimSpace(s[:i]))
		if err != nil || n < 1 || n > MaxSimulatedGPUs {
			return fail("GPU count %q must be a whole number from 1 to %d", strings.TrimSpace(s[:i]), MaxSimulatedGPUs)
		}
		count, model = n, strings.TrimSpace(s[i+1:])
	}
	if model == "" {
		return fail("missing GPU model after the count; known: %s", strings.Join(ModelKeys(), ", "))
	}
	m, ok := LookupModel(model)
	if !ok {
		return fail("unknown GPU model %q; known: %s", model, strings.Join(ModelKeys(), ", "))
	}
	return SimSpec{Count: count, Model: m}, nil
}
