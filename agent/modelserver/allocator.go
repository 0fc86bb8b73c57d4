package modelserver

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Allocator hands out the agent's GPU indexes to model servers: an index is
// held by at most one owner at a time until the owner releases it. It is
// safe for concurrent use.
type Allocator struct {
	mu      sync.Mutex
	devices []int          // sorted, unique
	owner   map[int]string // device → owner, for held devices only
}

// NewAllocator returns an allocator over the given GPU indexes (duplicates
// and negative indexes are dropped).
func NewAllocator(devices []int) *Allocator {
	ds := slices.DeleteFunc(slices.Clone(devices), func(d int) bool { return d < 0 })
	slices.Sort(ds)
	return &Allocator{devices: slices.Compact(ds), owner: map[int]string{}}
}

// Allocate assigns n free devices to owner, lowest indexes first, and
// returns them sorted. n == 0 returns nil. It fails with ErrNoGPUs when
// fewer than n are free and with ErrInvalidSpec when owner is empty, n is
// negative or owner already holds devices.
func (a *Allocator) Allocate(owner string, n int) ([]int, error) {
	if owner == "" || n < 0 {
		return nil, fmt.Errorf("%w: allocate %d GPUs for owner %q", ErrInvalidSpec, n, owner)
	}
	if n == 0 {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range a.owner {
		if o == owner {
			return nil, fmt.Errorf("%w: %q already holds GPUs", ErrInvalidSpec, owner)
		}
	}
	free := make([]int, 0, len(a.devices))
	for _, d := range a.devices {
		if _, held := a.owner[d]; !held {
			free = append(free, d)
		}
	}
	if len(free) < n {
		return nil, fmt.Errorf("%w: need %d, %d of %d free", ErrNoGPUs, n, len(free), len(a.devices))
	}
	got := free[:n:n]
	for _, d := range got {
		a.owner[d] = owner
	}
	return got, nil
}

// Release frees every device held by owner and returns how many it freed.
// Releasing an owner that holds nothing is a no-op.
func (a *Allocator) Release(owner string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for d, o := range a.owner {
		if o == owner {
			delete(a.owner, d)
			n++
		}
	}
	return n
}

// Free returns how many devices are unassigned.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.devices) - len(a.owner)
}

// Devices returns every device index the allocator manages, sorted.
func (a *Allocator) Devices() []int { return slices.Clone(a.devices) }

// Assignments returns each owner's devices, sorted.
func (a *Allocator) Assignments() map[string][]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]int{}
	for _, d := range slices.Sorted(maps.Keys(a.owner)) {
		o := a.owner[d]
		out[o] = append(out[o], d)
	}
	return out
}
