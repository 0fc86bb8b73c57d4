package secrets

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Redacted is what a Value prints and marshals as.
const Redacted = "[REDACTED]"

// Value holds a secret's bytes. Every way of printing or encoding it (fmt
// with any verb, encoding/json, encoding.TextMarshaler users such as YAML
// encoders, log/slog) gives [Redacted]; [Value.Reveal] returns the bytes.
//
// Copies of a Value share its bytes, so wiping one wipes them all; the
// zero Value holds nothing. A Value is safe for concurrent use, but the
// slice Reveal returns is zeroed in place by Wipe, so finish with it before
// wiping.
type Value struct {
	s *valueState
}

type valueState struct {
	mu sync.Mutex
	b  []byte
}

// NewValue returns a Value holding b. The Value takes ownership of b: the
// caller must not use b afterwards, and Wipe zeroes it.
func NewValue(b []byte) *Value {
	return &Value{s: &valueState{b: b}}
}

// Reveal returns the secret bytes, nil once wiped. The slice is the Value's
// own storage, not a copy: do not keep it past Wipe, and do not modify it.
func (v *Value) Reveal() []byte {
	if v == nil || v.s == nil {
		return nil
	}
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return v.s.b
}

// Len returns the number of secret bytes, 0 once wiped.
func (v *Value) Len() int { return len(v.Reveal()) }

// Wiped reports whether the Value holds no bytes (it was wiped, or never
// held any).
func (v *Value) Wiped() bool { return v.Reveal() == nil }

// Clone returns an independent Value holding a copy of the bytes; wiping
// one does not wipe the other. Cloning a wiped Value gives a wiped Value.
func (v *Value) Clone() *Value {
	b := v.Reveal()
	if b == nil {
		return &Value{s: &valueState{}}
	}
	return NewValue(append([]byte(nil), b...))
}

// Wipe zeroes the secret bytes and forgets them. It is idempotent and safe
// on a nil or zero Value.
func (v *Value) Wipe() {
	if v == nil || v.s == nil {
		return
	}
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	clear(v.s.b)
	v.s.b = nil
}

// String returns [Redacted].
func (Value) String() string { return Redacted }

// GoString returns [Redacted], for %#v.
func (Value) GoString() string { return Redacted }

// Format writes [Redacted] for every fmt verb and flag.
func (Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns [Redacted].
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue returns [Redacted], so log/slog never formats the bytes.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }
