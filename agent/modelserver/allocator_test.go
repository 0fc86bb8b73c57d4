package modelserver

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestAllocator(t *testing.T) {
	a := NewAllocator([]int{3, 1, 0, 2, 2, -1})
	if got := a.Devices(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("devices %v", got)
	}
	x, err := a.Allocate("x", 2)
	if err != nil || !slices.Equal(x, []int{0, 1}) {
		t.Fatalf("x: %v %v", x, err)
	}
	if _, err := a.Allocate("x", 1); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("second allocation for x: %v", err)
	}
	if _, err := a.Allocate("y", 3); !errors.Is(err, ErrNoGPUs) {
		t.Fatalf("y wants 3 of 2 free: %v", err)
	}
	y, err := a.Allocate("y", 1)
	if err != nil || !slices.Equal(y, []int{2}) {
		t.Fatalf("y: %v %v", y, err)
	}
	if none, err := a.Allocate("z", 0); err != nil || none != nil {
		t.Fatalf("zero GPUs: %v %v", none, err)
	}
	if a.Free() != 1 {
		t.Fatalf("free %d", a.Free())
	}
	if got := a.Assignments(); !slices.Equal(got["x"], []int{0, 1}) || !slices.Equal(got["y"], []int{2}) || len(got) != 2 {
		t.Fatalf("assignments %v", got)
	}
	if n := a.Release("x"); n != 2 {
		t.Fatalf("released %d", n)
	}
	if n := a.Release("x"); n != 0 {
		t.Fatalf("released again %d", n)
	}
	w, err := a.Allocate("w", 3)
	if err != nil || !slices.Equal(w, []int{0, 1, 3}) {
		t.Fatalf("w: %v %v", w, err)
	}
	if _, err := a.Allocate("", 1); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("empty owner: %v", err)
	}
	if _, err := a.Allocate("v", -1); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("negative: %v", err)
	}
}

// TestAllocatorConcurrent checks that no device is ever held twice.
func TestAllocatorConcurrent(t *testing.T) {
	a := NewAllocator([]int{0, 1, 2, 3, 4, 5, 6, 7})
	var mu sync.Mutex
	held := map[int]string{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				owner := fmt.Sprintf("g%d-%d", g, i)
				ds, err := a.Allocate(owner, 1+i%3)
				if err != nil {
					continue
				}
				mu.Lock()
				for _, d := range ds {
					if o, ok := held[d]; ok {
						t.Errorf("device %d given to %s while %s holds it", d, owner, o)
					}
					held[d] = owner
				}
				mu.Unlock()
				mu.Lock()
				for _, d := range ds {
					delete(held, d)
				}
				mu.Unlock()
				a.Release(owner)
			}
		})
	}
	wg.Wait()
	if a.Free() != 8 {
		t.Fatalf("free %d after all released", a.Free())
	}
}
