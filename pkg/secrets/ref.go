package secrets

import (
	"errors"
	"regexp"
	"strings"
)

// Kind is the kind of store a reference points into.
type Kind int

// Reference kinds.
const (
	// KindSecretsManager is an AWS Secrets Manager secret, referenced by ARN.
	KindSecretsManager Kind = iota + 1
	// KindStore is a secret held by perfleet, referenced as
	// perfleet:secret/<name>.
	KindStore
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindSecretsManager:
		return "secretsmanager"
	case KindStore:
		return "store"
	default:
		return "unknown"
	}
}

// StorePrefix starts every perfleet-stored secret reference.
const StorePrefix = "perfleet:secret/"

// Limits on secret names.
const (
	// MaxSecretsManagerName is the longest Secrets Manager secret name,
	// not counting the random suffix.
	MaxSecretsManagerName = 512
	// MaxStoreName is the longest perfleet-stored secret name.
	MaxStoreName = 256
)

// Ref is a parsed secret reference. Build one with [ParseRef].
type Ref struct {
	// Kind says which store the reference points into.
	Kind Kind
	// Partition is the ARN's partition (aws, aws-cn, ...); Secrets
	// Manager only.
	Partition string
	// Region is the ARN's region; Secrets Manager only.
	Region string
	// Account is the ARN's 12-digit account; Secrets Manager only.
	Account string
	// Name is the secret's name. For a Secrets Manager ARN it is the
	// name without the random suffix.
	Name string
	// Suffix is the 6-character random suffix Secrets Manager appends to
	// a secret's ARN, or "" when the reference is a partial ARN.
	Suffix string
	// ARN is the full ARN exactly as given; Secrets Manager only. It is
	// what a resolver sends as the SecretId.
	ARN string
}

// String returns the reference as written: the ARN, or
// perfleet:secret/<name>. The zero Ref returns "".
func (r Ref) String() string {
	switch r.Kind {
	case KindSecretsManager:
		return r.ARN
	case KindStore:
		return StorePrefix + r.Name
	default:
		return ""
	}
}

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == Ref{} }

// ErrInvalidRef is matched (errors.Is) by every error ParseRef returns.
var ErrInvalidRef = errors.New("invalid secret reference")

// RefError is the error ParseRef returns. It names the rule the reference
// broke and never includes the reference itself, which may be a secret
// pasted in by mistake.
type RefError struct {
	// Rule says what a valid reference must look like.
	Rule string
}

// Error returns "invalid secret reference: <rule>".
func (e *RefError) Error() string { return ErrInvalidRef.Error() + ": " + e.Rule }

// Is reports whether target is ErrInvalidRef.
func (e *RefError) Is(target error) bool { return target == ErrInvalidRef }

// The rules ParseRef enforces, as its errors word them.
const (
	ruleForm = "must be arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name> " +
		"or perfleet:secret/<name>, never the secret itself"
	rulePartition = "ARN partition must be aws, aws-cn, aws-us-gov, aws-iso or aws-iso-b"
	ruleService   = "ARN service must be secretsmanager"
	ruleRegion    = "ARN region must be a region code such as us-east-1"
	ruleAccount   = "ARN account must be 12 digits"
	ruleResource  = "ARN resource must be secret:<name>"
	ruleSMName    = "Secrets Manager secret name must be 1-512 characters of letters, digits and /_+=.@-"
	ruleStoreName = "perfleet secret name must be 1-256 characters of letters, digits and /_+=.@-, starting with a letter or digit"
)

var (
	partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true, "aws-iso": true, "aws-iso-b": true}
	regionRE   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	smNameRE   = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	storeRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9/_+=.@-]{0,255}$`)
	suffixRE   = regexp.MustCompile(`^(.+)-([A-Za-z0-9]{6})$`)
)

// ParseRef parses a secret reference:
//
//	arn:<partition>:secretsmanager:<region>:<12-digit account>:secret:<name>
//	arn:<partition>:secretsmanager:<region>:<12-digit account>:secret:<name>-AbCdEf
//	perfleet:secret/<name>
//
// A Secrets Manager name is 1-512 characters of letters, digits and
// /_+=.@-; a perfleet name is 1-256 characters of letters, digits and
// /_+=.@-, starting with a letter or digit (the workload parser's rule). An ARN whose resource ends in a hyphen and six letters or digits
// is read as name plus random suffix, as Secrets Manager itself does (AWS
// advises against names of that shape); the full ARN is kept in Ref.ARN
// either way, and that is what the service resolves.
//
// The error is a *[RefError] naming the broken rule; it matches
// [ErrInvalidRef].
func ParseRef(s string) (Ref, error) {
	if name, ok := strings.CutPrefix(s, StorePrefix); ok {
		if !storeRE.MatchString(name) {
			return Ref{}, &RefError{Rule: ruleStoreName}
		}
		return Ref{Kind: KindStore, Name: name}, nil
	}
	if !strings.HasPrefix(s, "arn:") {
		return Ref{}, &RefError{Rule: ruleForm}
	}
	// arn : partition : service : region : account : secret : resource
	f := strings.SplitN(s, ":", 7)
	if len(f) != 7 {
		return Ref{}, &RefError{Rule: ruleForm}
	}
	switch {
	case !partitions[f[1]]:
		return Ref{}, &RefError{Rule: rulePartition}
	case f[2] != "secretsmanager":
		return Ref{}, &RefError{Rule: ruleService}
	case !regionRE.MatchString(f[3]):
		return Ref{}, &RefError{Rule: ruleRegion}
	case !accountRE.MatchString(f[4]):
		return Ref{}, &RefError{Rule: ruleAccount}
	case f[5] != "secret":
		return Ref{}, &RefError{Rule: ruleResource}
	}
	name, suffix := f[6], ""
	if m := suffixRE.FindStringSubmatch(name); m != nil {
		name, suffix = m[1], m[2]
	}
	if !smNameRE.MatchString(name) {
		return Ref{}, &RefError{Rule: ruleSMName}
	}
	return Ref{
		Kind: KindSecretsManager, Partition: f[1], Region: f[3], Account: f[4],
		Name: name, Suffix: suffix, ARN: s,
	}, nil
}
