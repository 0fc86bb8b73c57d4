package gpu

import (
	"fmt"
	"slices"
	"time"
)

// Usable returns the number of devices that are not lost.
func (inv Inventory) Usable() int {
	n := 0
	for _, d := range inv.Devices {
		if !d.Lost {
			n++
		}
	}
	return n
}

// clone returns a copy of inv that shares nothing with it.
func (inv Inventory) clone() Inventory {
	inv.Devices = slices.Clone(inv.Devices)
	return inv
}

// Summary is a compact description of a machine's GPUs for gossip metadata
// and scheduling: how many, which model, how much memory.
type Summary struct {
	// Count is the number of usable (not lost) devices.
	Count int
	// Model is the canonical model key of the simulated-GPU table when the
	// product name is known ("H100-80GB"), else the NVML product name;
	// "mixed" when the usable devices differ, "" when there are none.
	Model string
	// MemoryMiB is the memory of one device, the smallest when they differ.
	MemoryMiB uint64
	// Source is the inventory's Source.
	Source string
}

// String renders s as "8xH100-80GB/81559MiB", or "none" without devices.
func (s Summary) String() string {
	if s.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("%dx%s/%dMiB", s.Count, s.Model, s.MemoryMiB)
}

// Summary summarises the usable devices of inv.
func (inv Inventory) Summary() Summary {
	s := Summary{Source: inv.Source}
	for _, d := range inv.Devices {
		if d.Lost {
			continue
		}
		model := d.Name
		if m, ok := modelByName(d.Name); ok {
			model = m.Key
		}
		mib := d.MemoryTotalBytes >> 20
		switch {
		case s.Count == 0:
			s.Model, s.MemoryMiB = model, mib
		case s.Model != model:
			s.Model = "mixed"
		}
		s.MemoryMiB = min(s.MemoryMiB, mib)
		s.Count++
	}
	return s
}

// NoneBackend is the backend of a machine without usable GPUs: its inventory
// is empty and says why.
type NoneBackend struct {
	reason string
}

var _ Backend = (*NoneBackend)(nil)

// NewNone returns a backend without devices; reason ends up in
// Inventory.Reason ("NVML unavailable: ERROR_LIBRARY_NOT_FOUND").
func NewNone(reason string) *NoneBackend {
	return &NoneBackend{reason: reason}
}

// Inventory returns an empty inventory with Source SourceNone.
func (n *NoneBackend) Inventory() Inventory {
	return Inventory{Source: SourceNone, Reason: n.reason}
}

// Sample always fails with ErrNoDevice.
func (n *NoneBackend) Sample(index int, _ time.Time) (Sample, error) {
	return Sample{}, fmt.Errorf("%w: %d", ErrNoDevice, index)
}

// Close does nothing.
func (n *NoneBackend) Close() error { return nil }
