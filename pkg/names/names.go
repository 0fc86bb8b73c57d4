// Package names holds SageMaker's naming and format rules for resource
// names, identifiers, role ARNs, tags and output locations. Each check returns
// an error whose text states the rule, ready to pair with the field's path.
package names

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/perfleet/perfleet/pkg/arn"
)

// MaxNameLength is the longest resource name.
const MaxNameLength = 63

var (
	nameRE         = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)
	nameContainsRE = regexp.MustCompile(`^[a-zA-Z0-9\-]*$`)
	roleRE         = regexp.MustCompile(`^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	tagRE          = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	channelRE      = regexp.MustCompile(`^[A-Za-z0-9\.\-_]+$`)
	vpcIDRE        = regexp.MustCompile(`^[-0-9a-zA-Z]+$`)
	tokenRE        = regexp.MustCompile(`^[a-zA-Z0-9\-_.:]+$`)
)

// Name checks a resource name: 1-63 characters matching
// [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
func Name(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is required")
	case len(s) > MaxNameLength:
		return fmt.Errorf("must be at most %d characters, got %d", MaxNameLength, len(s))
	case !nameRE.MatchString(s):
		return fmt.Errorf("must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (letters, digits and inner hyphens), got %q", s)
	}
	return nil
}

// Identifier checks a name-or-ARN identifier of the given resource type and
// returns the bare name and the account named by the ARN ("" for a bare
// name).
func Identifier(s, resourceType string) (name, account string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("is required")
	}
	if len(s) > 256 {
		return "", "", fmt.Errorf("must be at most 256 characters, got %d", len(s))
	}
	if !arn.IsARN(s) {
		return s, "", Name(s)
	}
	a, err := arn.Parse(s)
	if err != nil {
		return "", "", err
	}
	if a.ResourceType != resourceType {
		return "", "", fmt.Errorf("ARN names a %s, want a %s", a.ResourceType, resourceType)
	}
	if err := Name(a.Name); err != nil {
		return "", "", fmt.Errorf("ARN resource name %v", err)
	}
	return a.Name, a.Account, nil
}

// NameContains checks a List filter substring.
func NameContains(s string) error {
	if len(s) > MaxNameLength {
		return fmt.Errorf("must be at most %d characters", MaxNameLength)
	}
	if !nameContainsRE.MatchString(s) {
		return fmt.Errorf("must match [a-zA-Z0-9-]*")
	}
	return nil
}

// RoleARN checks an IAM role ARN: 20-2048 characters matching
// arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+.
func RoleARN(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is required")
	case len(s) < 20 || len(s) > 2048:
		return fmt.Errorf("must be 20-2048 characters, got %d", len(s))
	case !roleRE.MatchString(s):
		return fmt.Errorf(`must be an IAM role ARN matching arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	return nil
}

// TagKey checks a tag key: 1-128 characters of letters, digits, spaces and
// _.:/=+-@, not starting with aws:.
func TagKey(s string) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return fmt.Errorf("is required")
	case n > 128:
		return fmt.Errorf("must be at most 128 characters, got %d", n)
	case !tagRE.MatchString(s):
		return fmt.Errorf("may contain only letters, digits, spaces and _.:/=+-@")
	case strings.HasPrefix(strings.ToLower(s), "aws:"):
		return fmt.Errorf("must not start with the reserved prefix aws:")
	}
	return nil
}

// TagValue checks a tag value: 0-256 characters of the tag key alphabet.
func TagValue(s string) error {
	if n := utf8.RuneCountInString(s); n > 256 {
		return fmt.Errorf("must be at most 256 characters, got %d", n)
	}
	if !tagRE.MatchString(s) {
		return fmt.Errorf("may contain only letters, digits, spaces and _.:/=+-@")
	}
	return nil
}

// MaxTags is the most tags a resource may carry.
const MaxTags = 50

// Location checks an output or data location: s3://bucket[/prefix] or
// file:///absolute/path.
func Location(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if len(s) > 1024 {
		return fmt.Errorf("must be at most 1024 characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("must be s3://bucket/prefix or file:///absolute/path")
	}
	switch u.Scheme {
	case "s3":
		if !validBucket(u.Host) {
			return fmt.Errorf("s3 bucket %q must be 3-63 characters of lowercase letters, digits, dots and hyphens", u.Host)
		}
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("file locations must be absolute: file:///absolute/path")
		}
	default:
		return fmt.Errorf("must be s3://bucket/prefix or file:///absolute/path, got scheme %q", u.Scheme)
	}
	return nil
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$`)

func validBucket(b string) bool { return bucketRE.MatchString(b) }

// ChannelName checks a dataset channel name: 1-64 characters [A-Za-z0-9.\-_]+.
func ChannelName(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if len(s) > 64 || !channelRE.MatchString(s) {
		return fmt.Errorf("must be 1-64 characters matching [A-Za-z0-9.\\-_]+")
	}
	return nil
}

// VPCID checks a subnet or security group ID.
func VPCID(s string) error {
	if s == "" || len(s) > 32 || !vpcIDRE.MatchString(s) {
		return fmt.Errorf("must be 1-32 characters matching [-0-9a-zA-Z]+")
	}
	return nil
}

// ClientToken checks an idempotency token: 1-64 characters of
// [a-zA-Z0-9-_.:].
func ClientToken(s string) error {
	if len(s) > 64 || !tokenRE.MatchString(s) {
		return fmt.Errorf("must be 1-64 characters matching [a-zA-Z0-9-_.:]")
	}
	return nil
}
