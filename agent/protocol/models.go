package protocol

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// ModelSelector picks the model name of each request among several (LoRA
// adapters): "round_robin" (request n → model n mod N) or "random".
type ModelSelector struct {
	names  []string
	random bool
	n      atomic.Uint64
	mu     sync.Mutex
	rng    *rand.Rand
}

// NewModelSelector returns a selector; an unknown strategy is round robin.
func NewModelSelector(names []string, strategy string, seed uint64) *ModelSelector {
	return &ModelSelector{names: names, random: strategy == "random", rng: rand.New(rand.NewPCG(seed, 7))}
}

// Pick returns the model for the next request ("" when no names).
func (m *ModelSelector) Pick() string {
	switch len(m.names) {
	case 0:
		return ""
	case 1:
		return m.names[0]
	}
	if m.random {
		m.mu.Lock()
		i := m.rng.IntN(len(m.names))
		m.mu.Unlock()
		return m.names[i]
	}
	return m.names[(m.n.Add(1)-1)%uint64(len(m.names))]
}
