package secrets

import (
	"context"
	"slices"
)

// Bundle is the resolved secrets of one shard: parameter name (hf_token,
// api_key) to value. Each parameter has its own Value, so wiping one does
// not wipe another. Printing or marshalling a Bundle shows the parameter
// names and [Redacted] values.
type Bundle map[string]*Value

// ResolveBundle resolves refs, a workload's secrets section (parameter
// name to reference), with r. Every reference is parsed before anything
// is fetched, and each distinct reference is fetched once however many
// parameters name it. On failure it wipes whatever it had resolved and
// returns a *[ResolveError] naming the parameter and reference (for a
// reference several parameters share, the first parameter by name).
func ResolveBundle(ctx context.Context, r Resolver, refs map[string]string) (Bundle, error) {
	params := make([]string, 0, len(refs))
	for p := range refs {
		params = append(params, p)
	}
	slices.Sort(params)

	parsed := make(map[string]Ref, len(refs)) // reference text -> parsed
	order := []string(nil)                    // distinct references, in parameter order
	owner := map[string]string{}              // reference text -> first parameter naming it
	for _, p := range params {
		s := refs[p]
		if _, seen := parsed[s]; seen {
			continue
		}
		ref, err := ParseRef(s)
		if err != nil {
			// Do not echo s: a malformed reference may be the secret.
			return nil, &ResolveError{Param: p, Ref: "<invalid reference>", Err: err}
		}
		parsed[s], owner[s] = ref, p
		order = append(order, s)
	}

	fetched := make(map[string]*Value, len(order))
	wipeFetched := func() {
		for _, v := range fetched {
			v.Wipe()
		}
	}
	for _, s := range order {
		if err := ctx.Err(); err != nil {
			wipeFetched()
			return nil, &ResolveError{Param: owner[s], Ref: s, Err: err}
		}
		v, err := r.Resolve(ctx, parsed[s])
		if err == nil && v == nil {
			err = &ResolveError{Ref: s, class: ErrEmpty}
		}
		if err != nil {
			v.Wipe()
			wipeFetched()
			return nil, withParam(err, owner[s], s)
		}
		fetched[s] = v
	}

	b := make(Bundle, len(params))
	used := map[string]bool{}
	for _, p := range params {
		s := refs[p]
		if !used[s] {
			// The first parameter takes the fetched Value itself, the
			// others a copy.
			used[s] = true
			b[p] = fetched[s]
		} else {
			b[p] = fetched[s].Clone()
		}
	}
	return b, nil
}

// withParam returns err as a *ResolveError naming param and ref.
func withParam(err error, param, ref string) error {
	if re, ok := err.(*ResolveError); ok && re.Param == "" {
		c := *re
		c.Param = param
		if c.Ref == "" {
			c.Ref = ref
		}
		return &c
	}
	return &ResolveError{Param: param, Ref: ref, Err: err}
}

// Get returns the value for param, or nil when the bundle has none.
func (b Bundle) Get(param string) *Value { return b[param] }

// Wipe zeroes every value in the bundle.
func (b Bundle) Wipe() {
	for _, v := range b {
		v.Wipe()
	}
}
