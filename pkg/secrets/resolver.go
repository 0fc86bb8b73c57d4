package secrets

import (
	"context"
	"errors"
	"strings"
)

// Resolver fetches the value a reference names. The caller owns the
// returned Value and should Wipe it when done.
type Resolver interface {
	Resolve(ctx context.Context, ref Ref) (*Value, error)
}

// ResolverFunc adapts a function to the Resolver interface.
type ResolverFunc func(ctx context.Context, ref Ref) (*Value, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, ref Ref) (*Value, error) { return f(ctx, ref) }

// Router sends each reference to the resolver for its kind.
type Router struct {
	// SecretsManager resolves arn:...:secretsmanager:... references.
	SecretsManager Resolver
	// Store resolves perfleet:secret/<name> references.
	Store Resolver
}

// Resolve resolves ref with the resolver for ref.Kind; a kind without one
// fails with ErrUnsupported.
func (r Router) Resolve(ctx context.Context, ref Ref) (*Value, error) {
	var next Resolver
	switch ref.Kind {
	case KindSecretsManager:
		next = r.SecretsManager
	case KindStore:
		next = r.Store
	}
	if next == nil {
		return nil, &ResolveError{Ref: ref.String(), Err: errUnsupportedKind(ref.Kind), class: ErrUnsupported}
	}
	return next.Resolve(ctx, ref)
}

// Classes of resolution failure; a *[ResolveError] matches (errors.Is) the
// one that applies, alongside the error it wraps.
var (
	// ErrNotFound: the secret, or the requested version of it, does not
	// exist.
	ErrNotFound = errors.New("secret not found")
	// ErrAccessDenied: the credentials were refused, or do not allow
	// reading the secret.
	ErrAccessDenied = errors.New("access to secret denied")
	// ErrUnsupported: no resolver handles this kind of reference.
	ErrUnsupported = errors.New("unsupported secret reference")
	// ErrEmpty: the service answered with neither a string nor a binary
	// value.
	ErrEmpty = errors.New("secret has no value")
	// ErrMalformedResponse: the service's answer could not be decoded. The
	// decoder's own error is dropped, since it may quote the response.
	ErrMalformedResponse = errors.New("malformed secret response")
)

type unsupportedKindError Kind

func errUnsupportedKind(k Kind) error { return unsupportedKindError(k) }

// Error says which kind has no resolver.
func (e unsupportedKindError) Error() string {
	return "no resolver for " + Kind(e).String() + " references"
}

// ResolveError says which parameter and reference failed to resolve. Its
// message never includes a secret value.
type ResolveError struct {
	// Param is the workload parameter (hf_token, api_key), when known.
	Param string
	// Ref is the reference being resolved, as written.
	Ref string
	// Err is the underlying failure, such as the SDK's error.
	Err error

	class error
}

// Error returns "resolving secret <param> (<ref>): <err>".
func (e *ResolveError) Error() string {
	var b strings.Builder
	b.WriteString("resolving secret ")
	if e.Param != "" {
		b.WriteString(e.Param)
		b.WriteString(" (")
		b.WriteString(e.Ref)
		b.WriteString(")")
	} else {
		b.WriteString(e.Ref)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	} else if e.class != nil {
		b.WriteString(": ")
		b.WriteString(e.class.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error and the failure class (ErrNotFound,
// ErrAccessDenied, ...) when there is one.
func (e *ResolveError) Unwrap() []error {
	var out []error
	if e.Err != nil {
		out = append(out, e.Err)
	}
	if e.class != nil {
		out = append(out, e.class)
	}
	return out
}
