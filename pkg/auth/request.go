package auth

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is the request context of one authorization decision: who asks
// (Principal), to do what (Action), on what (Resource), and the values of the
// condition keys.
//
// A string field that is empty means that the corresponding condition key is
// absent from the request context. Tag maps distinguish absence (no entry)
// from an empty tag value (an entry with value "").
type Request struct {
	// Action is the IAM action, e.g. "sagemaker:CreateAIBenchmarkJob".
	// It is matched case-insensitively. An empty Action is never allowed.
	Action string
	// Resource is the ARN the action acts on. Empty means "*", the resource
	// of actions that do not act on one resource (List*): only policy
	// resources that match the literal string "*" (such as "*") apply.
	Resource string
	// Principal is the authenticated caller. A zero Principal is anonymous.
	Principal Principal

	// ResourceTags are the tags on the resource already (aws:ResourceTag/<k>).
	ResourceTags map[string]string
	// RequestTags are the tags the request sets (aws:RequestTag/<k>).
	RequestTags map[string]string
	// TagKeys are the tag keys in the request (aws:TagKeys): the keys being
	// set by a create or TagResource, or removed by UntagResource. When nil,
	// the keys of RequestTags are used.
	TagKeys []string

	// SourceAccount (aws:SourceAccount) and SourceArn (aws:SourceArn) name
	// the account and resource (a job) on whose behalf perfleet itself
	// makes the request; they are empty for direct calls.
	SourceAccount string
	SourceArn     string

	// SecureTransport (aws:SecureTransport) reports whether the request
	// came over TLS. The key is always present.
	SecureTransport bool
	// SourceIP (aws:SourceIp) is the caller's address; the key is absent
	// when SourceIP is the zero Addr.
	SourceIP netip.Addr
	// CurrentTime is the time of the request (aws:CurrentTime, as RFC 3339
	// in UTC, and aws:EpochTime, as seconds). Zero means time.Now() at
	// evaluation. The keys are always present.
	CurrentTime time.Time

	// Context holds the values of any other condition key: service keys
	// (sagemaker:…, perfleet:…) and the global keys without a field here
	// (aws:RequestedRegion, aws:UserAgent, aws:PrincipalType, aws:userid).
	// Names are matched case-insensitively; a key with no values is
	// absent. Context cannot override the keys that have a field above.
	Context map[string][]string
}

// Principal is an authenticated caller in a Request.
type Principal struct {
	// ARN is the principal's ARN (aws:PrincipalArn).
	ARN string
	// Account is the principal's 12-digit account ID (aws:PrincipalAccount).
	Account string
	// Username is the principal's friendly name (aws:username).
	Username string
	// Tags are the principal's tags (aws:PrincipalTag/<k>).
	Tags map[string]string
}

// Canonical (lower-case) names of the condition keys with a Request field.
const (
	keyPrincipalAccount = "aws:principalaccount"
	keyPrincipalArn     = "aws:principalarn"
	keyUsername         = "aws:username"
	keyTagKeys          = "aws:tagkeys"
	keySourceAccount    = "aws:sourceaccount"
	keySourceArn        = "aws:sourcearn"
	keySecureTransport  = "aws:securetransport"
	keySourceIP         = "aws:sourceip"
	keyCurrentTime      = "aws:currenttime"
	keyEpochTime        = "aws:epochtime"

	prefixResourceTag  = "aws:resourcetag/"
	prefixRequestTag   = "aws:requesttag/"
	prefixPrincipalTag = "aws:principaltag/"
)

// fieldKeys are the keys answered from Request fields rather than Context.
var fieldKeys = map[string]bool{
	keyPrincipalAccount: true, keyPrincipalArn: true, keyUsername: true, keyTagKeys: true,
	keySourceAccount: true, keySourceArn: true, keySecureTransport: true, keySourceIP: true,
	keyCurrentTime: true, keyEpochTime: true,
}

// contextGlobalKeys are recognised global keys whose values come from
// Request.Context.
var contextGlobalKeys = map[string]bool{
	"aws:requestedregion": true, "aws:useragent": true, "aws:principaltype": true, "aws:userid": true,
}

// multiValuedKeys cannot be used as policy variables.
var multiValuedKeys = map[string]bool{keyTagKeys: true}

var tagKeyRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)

var serviceKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:/=+\-@]+$`)

// canonicalKey validates a condition key name and returns its canonical,
// lower-cased form, or a rule that the name breaks.
func canonicalKey(name string) (string, string) {
	lower := strings.ToLower(name)
	if fieldKeys[lower] || contextGlobalKeys[lower] {
		return lower, ""
	}
	for _, p := range []string{prefixResourceTag, prefixRequestTag, prefixPrincipalTag} {
		if strings.HasPrefix(lower, p) {
			tag := name[len(p):]
			if !tagKeyRE.MatchString(tag) {
				return "", "tag key " + strconv.Quote(tag) + " must be 1-128 letters, digits, spaces or _.:/=+-@"
			}
			return lower, ""
		}
	}
	for _, p := range []string{"sagemaker:", "perfleet:"} {
		if strings.HasPrefix(lower, p) {
			if !serviceKeyRE.MatchString(name[len(p):]) {
				return "", "service condition key " + strconv.Quote(name) + " has an empty or invalid name"
			}
			return lower, ""
		}
	}
	return "", "unknown condition key " + strconv.Quote(name)
}

// evalContext is a Request prepared for one evaluation.
type evalContext struct {
	req    *Request
	now    time.Time
	action string // lower-cased
	res    []rune
}

func newEvalContext(req *Request) *evalContext {
	now := req.CurrentTime
	if now.IsZero() {
		now = time.Now()
	}
	res := req.Resource
	if res == "" {
		res = "*"
	}
	return &evalContext{req: req, now: now, action: strings.ToLower(req.Action), res: []rune(res)}
}

func single(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// tagValues returns the values of the tags whose key equals key ignoring
// case, ordered by tag key.
func tagValues(tags map[string]string, key string) []string {
	var keys []string
	for k := range tags {
		if strings.EqualFold(k, key) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = tags[k]
	}
	return out
}

// lookup returns the values of the canonical condition key; nil or empty
// means the key is absent.
func (c *evalContext) lookup(key string) []string {
	r := c.req
	switch key {
	case keyPrincipalAccount:
		return single(r.Principal.Account)
	case keyPrincipalArn:
		return single(r.Principal.ARN)
	case keyUsername:
		return single(r.Principal.Username)
	case keySourceAccount:
		return single(r.SourceAccount)
	case keySourceArn:
		return single(r.SourceArn)
	case keySecureTransport:
		return []string{strconv.FormatBool(r.SecureTransport)}
	case keySourceIP:
		if !r.SourceIP.IsValid() {
			return nil
		}
		return []string{r.SourceIP.Unmap().String()}
	case keyCurrentTime:
		return []string{c.now.UTC().Format(time.RFC3339)}
	case keyEpochTime:
		return []string{strconv.FormatInt(c.now.Unix(), 10)}
	case keyTagKeys:
		if r.TagKeys != nil {
			return r.TagKeys
		}
		keys := make([]string, 0, len(r.RequestTags))
		for k := range r.RequestTags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	switch {
	case strings.HasPrefix(key, prefixResourceTag):
		return tagValues(r.ResourceTags, key[len(prefixResourceTag):])
	case strings.HasPrefix(key, prefixRequestTag):
		return tagValues(r.RequestTags, key[len(prefixRequestTag):])
	case strings.HasPrefix(key, prefixPrincipalTag):
		return tagValues(r.Principal.Tags, key[len(prefixPrincipalTag):])
	}
	var names []string
	for k := range r.Context {
		if strings.EqualFold(k, key) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []string
	for _, k := range names {
		out = append(out, r.Context[k]...)
	}
	return out
}
