package gpu

import (
	"cmp"
	"slices"
	"time"
)

// Energy sources, the value of WindowStats.EnergySource.
const (
	// EnergyCounter: every segment came from the device's energy counter.
	EnergyCounter = "counter"
	// EnergyIntegrated: every segment integrated the power readings.
	EnergyIntegrated = "power"
	// EnergyMixed: some segments used the counter, others the power readings.
	EnergyMixed = "mixed"
)

// WindowStats aggregates one device's samples over a window [From, To).
type WindowStats struct {
	// Index is the device's Device.Index.
	Index int
	// From and To bound the window.
	From, To time.Time
	// Samples counts the device's samples taken inside the window.
	Samples int
	// Fields says which statistics below have data: FieldGPUUtil,
	// FieldMemUtil, FieldMemUsed, FieldPower, FieldThrottle, FieldEnergy.
	Fields Field
	// GPUUtilMean and GPUUtilMax summarise Sample.GPUUtil in the window.
	GPUUtilMean, GPUUtilMax float64
	// MemUtilMean and MemUtilMax summarise Sample.MemUtil in the window.
	MemUtilMean, MemUtilMax float64
	// MemUsedMaxBytes is the largest Sample.MemUsedBytes in the window.
	MemUsedMaxBytes uint64
	// PowerMeanWatts and PowerMaxWatts summarise Sample.PowerWatts in the
	// window (the mean of the readings, not energy ÷ duration).
	PowerMeanWatts, PowerMaxWatts float64
	// EnergyJoules is the energy used over the part of the window that
	// consecutive samples cover (CoveredSeconds); see Aggregate.
	EnergyJoules float64
	// EnergySource is EnergyCounter, EnergyIntegrated, EnergyMixed, or ""
	// when no energy could be computed.
	EnergySource string
	// CoveredSeconds is the part of the window EnergyJoules accounts for.
	CoveredSeconds float64
	// ThrottleReasons is the union of the reasons seen in the window.
	ThrottleReasons []string
	// Lost is true when the device was found lost before To.
	Lost bool
}

// Aggregate summarises samples (of any devices, in any order) per device over
// the window [from, to), sorted by device index. Means and maxima use the
// samples inside the window that hold the field.
//
// Energy is computed per segment between consecutive samples of a device,
// counting the part of each segment that overlaps the window, so samples
// just outside the window contribute their share:
//
//   - when both ends hold the energy counter (and it did not go backwards):
//     ΔE × overlap / segment, the counter's delta spread evenly;
//   - else when both ends hold power: the integral over the overlap of the
//     power interpolated linearly between the two readings (trapezoids);
//   - else the segment is skipped and not counted in CoveredSeconds.
//
// A device with a sample marked Lost before to is reported Lost; lost
// samples carry no measurements.
func Aggregate(samples []Sample, from, to time.Time) []WindowStats {
	byDevice := map[int][]Sample{}
	for _, smp := range samples {
		if smp.Lost && !smp.Time.Before(to) {
			continue // lost after the window: not this window's concern
		}
		byDevice[smp.Index] = append(byDevice[smp.Index], smp)
	}
	out := make([]WindowStats, 0, len(byDevice))
	for index, list := range byDevice {
		slices.SortStableFunc(list, func(a, b Sample) int { return a.Time.Compare(b.Time) })
		out = append(out, aggregateDevice(index, list, from, to))
	}
	slices.SortFunc(out, func(a, b WindowStats) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// aggregateDevice computes the statistics of one device from its samples,
// sorted by time.
func aggregateDevice(index int, list []Sample, from, to time.Time) WindowStats {
	w := WindowStats{Index: index, From: from, To: to}
	var gpuN, memN, powN int
	var gpuSum, memSum, powSum float64
	throttle := map[string]bool{}
	for _, smp := range list {
		if smp.Lost && smp.Time.Before(to) {
			w.Lost = true
		}
		if smp.Time.Before(from) || !smp.Time.Before(to) || smp.Lost {
			continue
		}
		w.Samples++
		if smp.Has(FieldGPUUtil) {
			gpuN++
			gpuSum += smp.GPUUtil
			w.GPUUtilMax = max(w.GPUUtilMax, smp.GPUUtil)
		}
		if smp.Has(FieldMemUtil) {
			memN++
			memSum += smp.MemUtil
			w.MemUtilMax = max(w.MemUtilMax, smp.MemUtil)
		}
		if smp.Has(FieldMemUsed) {
			w.Fields |= FieldMemUsed
			w.MemUsedMaxBytes = max(w.MemUsedMaxBytes, smp.MemUsedBytes)
		}
		if smp.Has(FieldPower) {
			powN++
			powSum += smp.PowerWatts
			w.PowerMaxWatts = max(w.PowerMaxWatts, smp.PowerWatts)
		}
		if smp.Has(FieldThrottle) {
			w.Fields |= FieldThrottle
			for _, r := range smp.ThrottleReasons {
				throttle[r] = true
			}
		}
	}
	if gpuN > 0 {
		w.Fields |= FieldGPUUtil
		w.GPUUtilMean = gpuSum / float64(gpuN)
	}
	if memN > 0 {
		w.Fields |= FieldMemUtil
		w.MemUtilMean = memSum / float64(memN)
	}
	if powN > 0 {
		w.Fields |= FieldPower
		w.PowerMeanWatts = powSum / float64(powN)
	}
	for r := range throttle {
		w.ThrottleReasons = append(w.ThrottleReasons, r)
	}
	slices.SortFunc(w.ThrottleReasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(throttleRank(a), throttleRank(b)), cmp.Compare(a, b))
	})
	energyOverWindow(&w, list)
	return w
}

// energyOverWindow fills the energy statistics of w from the device's
// samples, sorted by time, as Aggregate documents.
func energyOverWindow(w *WindowStats, list []Sample) {
	var counter, integrated bool
	for k := 1; k < len(list); k++ {
		a, b := list[k-1], list[k]
		if a.Lost || b.Lost {
			continue
		}
		lo, hi := later(a.Time, w.From), earlier(b.Time, w.To)
		if !hi.After(lo) {
			continue
		}
		span := b.Time.Sub(a.Time).Seconds()
		overlap := hi.Sub(lo).Seconds()
		switch {
		case a.Has(FieldEnergy) && b.Has(FieldEnergy) && b.EnergyMillijoules >= a.EnergyMillijoules:
			w.EnergyJoules += float64(b.EnergyMillijoules-a.EnergyMillijoules) / 1000 * overlap / span
			counter = true
		case a.Has(FieldPower) && b.Has(FieldPower):
			at := func(t time.Time) float64 {
				f := t.Sub(a.Time).Seconds() / span
				return a.PowerWatts + (b.PowerWatts-a.PowerWatts)*f
			}
			w.EnergyJoules += (at(lo) + at(hi)) / 2 * overlap
			integrated = true
		default:
			continue
		}
		w.CoveredSeconds += overlap
	}
	switch {
	case counter && integrated:
		w.EnergySource = EnergyMixed
	case counter:
		w.EnergySource = EnergyCounter
	case integrated:
		w.EnergySource = EnergyIntegrated
	}
	if w.EnergySource != "" {
		w.Fields |= FieldEnergy
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
