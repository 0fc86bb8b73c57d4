// Package pricing is perfleet's price catalog: what one hour of an
// instance type costs, so that a recommendation job can compare candidate
// deployments by $/hour and by $ per 1M output tokens.
//
// The catalog starts from built-in figures as of CatalogDate:
//
//   - SageMaker real-time inference on-demand list prices, in USD per
//     instance-hour, for every value of SageMaker's
//     AIRecommendationInstanceType enum (ml.g5, ml.g6, ml.g6e, ml.g7,
//     ml.g7e, ml.p3, ml.p4d, ml.p4de, ml.p5, ml.p5e, ml.p5en, ml.p6-b200)
//     in us-east-1, us-west-2 and eu-west-1, with each type's GPU count
//     and model;
//   - estimated on-prem $/GPU-hour for common GPU models (amortised
//     hardware plus power), for on-prem instance classes.
//
// Both are hand-compiled list figures, not live data, and some are marked
// as estimates: override them with a pricing file (see Catalog.Load) or
// with Catalog.Set and Catalog.SetGPUHour. Every Entry that Lookup returns
// says in its Source which figure was used.
package pricing

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrNoPrice is wrapped by Lookup's error when no figure prices an
// instance type.
var ErrNoPrice = errors.New("no price")

// Entry is the price Lookup found for one instance of an instance type.
type Entry struct {
	// Key is the instance type or on-prem class that was looked up.
	Key string
	// Region is the region the price is for: the requested region, the
	// fallback region when the built-in table has no figure for the
	// requested one, or "" for a price that applies in every region (an
	// override without a region, or an on-prem price).
	Region string
	// USDPerHour is the price of one instance for one hour, in US dollars.
	USDPerHour float64
	// GPUs is the number of GPUs in one instance: the built-in figure for
	// ml.* types, otherwise the count given to Lookup.
	GPUs int
	// GPUModel is the GPU model: the built-in one for ml.* types,
	// otherwise the model given to Lookup, canonicalised by CanonicalGPU
	// when the catalog knows it.
	GPUModel string
	// Source says in one line which figure was used, for people reading a
	// report, e.g. "built-in SageMaker on-demand list price, us-east-1, as
	// of 2026-11" or "on-prem: 8 x H100-80GB at $2.10/GPU-hour (pricing
	// file prices.yaml)".
	Source string
	// AsOf is the date of a built-in figure (CatalogDate); empty for a
	// figure the user supplied.
	AsOf string
}

// CostPerMillionTokens is the cost of producing one million tokens at
// tokensPerSecond on one instance: USDPerHour / (tokensPerSecond × 3600)
// × 10⁶. It is +Inf when the throughput is not positive.
func (e Entry) CostPerMillionTokens(tokensPerSecond float64) float64 {
	if !(tokensPerSecond > 0) {
		return math.Inf(1)
	}
	return e.USDPerHour / (tokensPerSecond * 3600) * 1e6
}

// CostPerRequest is the cost of one request at requestsPerSecond on one
// instance: USDPerHour / (requestsPerSecond × 3600). It is +Inf when the
// throughput is not positive.
func (e Entry) CostPerRequest(requestsPerSecond float64) float64 {
	if !(requestsPerSecond > 0) {
		return math.Inf(1)
	}
	return e.USDPerHour / (requestsPerSecond * 3600)
}

// Catalog is a set of prices: the built-in figures plus the user's
// overrides. Its methods are safe for concurrent use. The zero value is
// ready to use and equal to Default().
type Catalog struct {
	mu sync.RWMutex
	// instances holds instance-type overrides: type → region ("" for
	// every region) → price.
	instances map[string]map[string]figure
	// gpuHour holds $/GPU-hour overrides by canonical GPU model.
	gpuHour map[string]figure
}

// figure is a user's price and where it came from.
type figure struct {
	usd    float64
	origin string // e.g. "pricing file prices.yaml", "set programmatically"
	name   string // the GPU model as written, for unknown models
}

// originSet is the origin of prices given to Set and SetGPUHour.
const originSet = "set programmatically"

// Default returns a catalog holding only the built-in figures.
func Default() *Catalog { return &Catalog{} }

// Set overrides the price of an instance type (an ml.* type or an on-prem
// class name) with usdPerHour in region, or in every region when region
// is "". A price for a region wins over one for every region. Set panics
// if usdPerHour is negative, NaN or infinite: check user input first, or
// pass it through Load, which reports such values as errors.
func (c *Catalog) Set(key, region string, usdPerHour float64) {
	if err := checkUSD(usdPerHour); err != nil {
		panic(fmt.Sprintf("pricing: Set(%q, %q): %v", key, region, err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(strings.TrimSpace(key), strings.TrimSpace(region), figure{usd: usdPerHour, origin: originSet})
}

func (c *Catalog) setLocked(key, region string, f figure) {
	if c.instances == nil {
		c.instances = map[string]map[string]figure{}
	}
	if c.instances[key] == nil {
		c.instances[key] = map[string]figure{}
	}
	c.instances[key][region] = f
}

// SetGPUHour sets the on-prem price of one GPU of gpuModel for one hour,
// in US dollars. gpuModel may be any spelling CanonicalGPU accepts. Like
// Set, it panics if usd is negative, NaN or infinite.
func (c *Catalog) SetGPUHour(gpuModel string, usd float64) {
	if err := checkUSD(usd); err != nil {
		panic(fmt.Sprintf("pricing: SetGPUHour(%q): %v", gpuModel, err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setGPUHourLocked(gpuModel, figure{usd: usd, origin: originSet})
}

func (c *Catalog) setGPUHourLocked(gpuModel string, f figure) {
	if c.gpuHour == nil {
		c.gpuHour = map[string]figure{}
	}
	model, known := CanonicalGPU(gpuModel)
	f.name = model
	if !known {
		f.name = strings.TrimSpace(gpuModel)
	}
	c.gpuHour[model] = f
}

// checkUSD rejects prices that are not a non-negative number of dollars.
func checkUSD(usd float64) error {
	if math.IsNaN(usd) || math.IsInf(usd, 0) || usd < 0 {
		return fmt.Errorf("price must be a non-negative number of US dollars, got %v", usd)
	}
	return nil
}

// Lookup prices one instance of instanceType in region. It tries, in
// order:
//
//  1. an override for instanceType in region;
//  2. an override for instanceType in every region;
//  3. the built-in SageMaker price of an ml.* type in region, or in
//     us-east-1 when the table has no figure for region (Source says so);
//  4. an on-prem price: gpuCount × the $/GPU-hour of gpuModel (from
//     overrides, else the built-in estimate). gpuModel is matched by
//     CanonicalGPU, so NVML names such as "NVIDIA H100 80GB HBM3" work.
//
// When none applies, the error wraps ErrNoPrice, names the instance type
// and GPU model, and says which pricing-file key would price it.
func (c *Catalog) Lookup(instanceType, region string, gpuModel string, gpuCount int) (Entry, error) {
	key, region := strings.TrimSpace(instanceType), strings.TrimSpace(region)
	e := Entry{Key: key, GPUs: gpuCount, GPUModel: strings.TrimSpace(gpuModel)}
	model, knownModel := CanonicalGPU(gpuModel)
	if knownModel {
		e.GPUModel = model
	}
	hw, isBuiltin := builtin[key]
	if isBuiltin {
		e.GPUs, e.GPUModel = hw.gpus, hw.gpu
	}

	c.mu.RLock()
	byRegion := c.instances[key]
	regional, okRegional := byRegion[region]
	anyRegion, okAny := byRegion[""]
	gpuHour, okGPUHour := c.gpuHour[model]
	c.mu.RUnlock()

	switch {
	case region != "" && okRegional:
		e.Region, e.USDPerHour = region, regional.usd
		e.Source = fmt.Sprintf("override %s, %s", fromOrigin(regional.origin), region)
		return e, nil
	case okAny:
		e.USDPerHour = anyRegion.usd
		e.Source = fmt.Sprintf("override %s, any region", fromOrigin(anyRegion.origin))
		return e, nil
	case isBuiltin:
		return builtinEntry(e, hw, region), nil
	}

	if model != "" && gpuCount > 0 {
		display, usd, origin, asOf := model, 0.0, "", ""
		switch defaultUSD, okDefault := defaultGPUHour[model]; {
		case okGPUHour:
			display, usd, origin = gpuHour.name, gpuHour.usd, gpuHour.origin
		case okDefault:
			usd, origin, asOf = defaultUSD, "built-in estimate as of "+CatalogDate, CatalogDate
		}
		if origin != "" {
			e.GPUModel, e.USDPerHour, e.AsOf = display, usd*float64(gpuCount), asOf
			e.Source = fmt.Sprintf("on-prem: %d x %s at $%s/GPU-hour (%s)", gpuCount, display, dollars(usd), origin)
			return e, nil
		}
	}
	return Entry{}, noPriceError(key, strings.TrimSpace(gpuModel), model, knownModel, gpuCount)
}

// builtinEntry fills e from the built-in table for region.
func builtinEntry(e Entry, hw hardware, region string) Entry {
	where := region
	i := slices.Index(regions[:], region)
	if i < 0 {
		i = slices.Index(regions[:], fallbackRegion)
		if region == "" {
			where = fallbackRegion + " (no region given)"
		} else {
			where = fmt.Sprintf("%s (no built-in figure for %s)", fallbackRegion, region)
		}
	}
	kind := "list price"
	if hw.basis == estimate {
		kind = "estimate"
	}
	e.Region, e.USDPerHour, e.AsOf = regions[i], hw.usd[i], CatalogDate
	e.Source = fmt.Sprintf("built-in SageMaker on-demand %s, %s, as of %s", kind, where, CatalogDate)
	return e
}

// noPriceError explains how to price an instance type Lookup could not.
func noPriceError(key, gpuModel, model string, knownModel bool, gpuCount int) error {
	gpus := "no GPUs reported"
	if gpuModel != "" || gpuCount > 0 {
		gpus = fmt.Sprintf("%d x %q", gpuCount, gpuModel)
	}
	hint := fmt.Sprintf("add `instances: {%q: {usd_per_hour: N}}`", key)
	if gpuModel != "" && gpuCount > 0 {
		name := model
		if !knownModel {
			name = gpuModel
		}
		hint += fmt.Sprintf(" or `gpu_hour_usd: {%q: N}`", name)
	}
	return fmt.Errorf("%w for instance type %q (%s): %s to the pricing file", ErrNoPrice, key, gpus, hint)
}

// fromOrigin phrases an override's origin after the word "override".
func fromOrigin(origin string) string {
	if origin == originSet {
		return "(" + origin + ")"
	}
	return "from " + origin
}

// dollars formats a dollar amount with at least two decimals and no
// rounding: 2.1 → "2.10", 0.035 → "0.035".
func dollars(usd float64) string {
	s := strconv.FormatFloat(usd, 'f', -1, 64)
	dot := strings.IndexByte(s, '.')
	switch {
	case dot < 0:
		return s + ".00"
	case len(s)-dot == 2:
		return s + "0"
	}
	return s
}

// Info returns the built-in GPU model and GPU count of an ml.* instance
// type, and false for a type the built-in table does not hold.
func (c *Catalog) Info(instanceType string) (gpuModel string, gpus int, ok bool) {
	hw, ok := builtin[strings.TrimSpace(instanceType)]
	return hw.gpu, hw.gpus, ok
}

// InstanceTypes returns the instance types of the built-in table, sorted.
func InstanceTypes() []string {
	out := make([]string, 0, len(builtin))
	for k := range builtin {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
