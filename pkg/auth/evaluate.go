package auth

import (
	"fmt"
	"strconv"
)

// Outcome is the result of an authorization decision.
type Outcome int

// Outcomes. The zero value is ImplicitDeny, so a zero Decision denies.
const (
	// ImplicitDeny: no statement allows the request (and none denies it).
	ImplicitDeny Outcome = iota
	// Allow: a statement allows the request and none denies it.
	Allow
	// ExplicitDeny: a Deny statement applies; it beats every Allow.
	ExplicitDeny
)

// String returns "Allow", "ExplicitDeny" or "ImplicitDeny".
func (o Outcome) String() string {
	switch o {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	case ImplicitDeny:
		return "ImplicitDeny"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// StatementRef identifies the statement behind a decision.
type StatementRef struct {
	// Policy is the Name of the policy.
	Policy string
	// Sid is the statement's Sid, "" if it has none.
	Sid string
	// Index is the statement's position in the policy's Statement list.
	Index int
}

// String returns e.g. `policy "team-a" Statement[1] (Sid "DenyProd")`.
func (r StatementRef) String() string {
	s := fmt.Sprintf("policy %q Statement[%d]", r.Policy, r.Index)
	if r.Sid != "" {
		s += fmt.Sprintf(" (Sid %q)", r.Sid)
	}
	return s
}

// Decision is the result of Evaluate.
type Decision struct {
	// Effect is the outcome.
	Effect Outcome
	// MatchedStatement is the statement that decided: the first matching
	// Deny for ExplicitDeny, the first matching Allow for Allow, and nil
	// for ImplicitDeny.
	MatchedStatement *StatementRef
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// String explains the decision, e.g.
// `ExplicitDeny by policy "guard" Statement[0] (Sid "NoProd")`.
func (d Decision) String() string {
	if d.MatchedStatement == nil {
		if d.Effect == ImplicitDeny {
			return "ImplicitDeny: no statement allows the request"
		}
		return d.Effect.String()
	}
	return d.Effect.String() + " by " + d.MatchedStatement.String()
}

// Evaluate decides whether req is allowed by the policies, with IAM's
// logic: an explicit Deny in any statement of any policy beats an Allow,
// which beats the default implicit deny. Nil policies are skipped. First
// matches are reported, in the order of the policies and their statements.
func Evaluate(req Request, policies ...*Policy) Decision {
	if req.Action == "" {
		return Decision{Effect: ImplicitDeny}
	}
	ctx := newEvalContext(&req)
	var allow *StatementRef
	for _, p := range policies {
		if p == nil {
			continue
		}
		for _, st := range p.statements {
			if !st.matches(ctx) {
				continue
			}
			ref := &StatementRef{Policy: p.Name, Sid: st.sid, Index: st.index}
			if st.effect == EffectDeny {
				return Decision{Effect: ExplicitDeny, MatchedStatement: ref}
			}
			if allow == nil {
				allow = ref
			}
		}
	}
	if allow != nil {
		return Decision{Effect: Allow, MatchedStatement: allow}
	}
	return Decision{Effect: ImplicitDeny}
}

// matches reports whether the statement applies to the request: its
// principal, action, resource and every condition match, and every policy
// variable it uses resolves.
func (st *statement) matches(ctx *evalContext) bool {
	if st.principal != nil && st.principal.matches(&ctx.req.Principal) == st.notPrinc {
		return false
	}
	if !st.matchAction(ctx) {
		return false
	}
	// Resolve every variable of the statement first: an unresolvable one
	// makes the statement not apply, whatever the other elements say.
	res := make([][]tok, len(st.resources))
	for i, t := range st.resources {
		ts, ok := t.resolve(ctx, true)
		if !ok {
			return false
		}
		res[i] = ts
	}
	conds := make([]resolvedValues, len(st.conditions))
	for i, c := range st.conditions {
		rv, ok := c.resolve(ctx)
		if !ok {
			return false
		}
		conds[i] = rv
	}
	if !st.anyResource {
		hit := false
		for _, p := range res {
			if globMatch(p, ctx.res) {
				hit = true
				break
			}
		}
		if hit == st.notResource {
			return false
		}
	}
	for i, c := range st.conditions {
		if !c.eval(ctx, conds[i]) {
			return false
		}
	}
	return true
}

func (st *statement) matchAction(ctx *evalContext) bool {
	a := []rune(ctx.action)
	hit := false
	for _, p := range st.actions {
		if globMatch(p, a) {
			hit = true
			break
		}
	}
	return hit != st.notAction
}
