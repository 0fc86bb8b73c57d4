// Package auth implements AWS IAM's policy language and evaluation logic for
// perfleet: the JSON policy documents, action and resource matching,
// condition operators and keys, policy variables, and the
// deny-beats-allow-beats-implicit-deny decision.
//
// # Policies
//
// Parse accepts a document in AWS's format:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Sid": "OwnJobs",
//	    "Effect": "Allow",
//	    "Action": ["sagemaker:Describe*", "sagemaker:StopAIBenchmarkJob"],
//	    "Resource": "arn:aws:sagemaker:*:${aws:PrincipalAccount}:ai-benchmark-job/*",
//	    "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}
//	  }]
//	}
//
// Validation is strict and every error names the element and the rule, e.g.
// `Statement[1].Effect: must be Allow or Deny, got "allow"`. Version is
// required ("2012-10-17", or "2008-10-17" in which "${…}" is literal text);
// Statement is an object or a non-empty array; unknown or duplicate keys are
// rejected, as are Action with NotAction, Resource with NotResource,
// Principal with NotPrincipal, NotPrincipal with Allow, duplicate Sids, Sids
// other than ASCII letters and digits, unknown sagemaker:/perfleet: actions
// (spelled without wildcards), resources that are neither "*" nor an ARN
// ("arn:" and six colon-separated components, or a '*' standing for the
// rest, as in "arn:aws:sagemaker:*"), Principal forms other than "*" and
// {"AWS": …}, unknown condition operators and keys, values that do not suit their
// operator (a number for Numeric*, a date for Date*, true/false for Bool
// and Null, an IP or CIDR for IpAddress, an ARN for Arn*).
//
// Resource (or NotResource) is required unless the statement names a
// Principal or NotPrincipal (a resource-based policy, whose resource is
// implied); such a statement applies to any resource.
//
// # Matching
//
// Actions are matched case-insensitively, resources case-sensitively. In
// both, '*' matches any run of characters and '?' exactly one, and both may
// span ':' and '/'. ArnEquals and ArnLike (identical, as in IAM) instead
// match each of the six colon-separated components of the ARN separately.
//
// A Principal element matches "*" (anyone, anonymous included), a 12-digit
// account ID or arn:<partition>:iam::<account>:root (any principal of that
// account), or one principal ARN exactly. A statement without Principal
// applies to whoever the policy is attached to: Evaluate does not know who
// that is, so pass it only the caller's identity policies and the
// resource's resource-based policy.
//
// # Conditions
//
// Every (operator, key) pair of a Condition block must hold (AND); a key's
// values are alternatives (OR). Condition key names are case-insensitive,
// including the tag-key part of aws:ResourceTag/<k>, aws:RequestTag/<k> and
// aws:PrincipalTag/<k> (IAM's documented behaviour: a condition on
// aws:ResourceTag/Owner matches a tag named "owner"). If a resource carries
// several tags whose keys differ only in case, the key has all their values.
// Tag values, and aws:TagKeys values, keep their case.
//
// For a key K with request values V and policy values P, with match(v) =
// "v matches some p in P" under the operator's positive form (StringEquals
// for StringNotEquals, IpAddress for NotIpAddress, …):
//
//   - Op (no prefix): true iff K is present and match(v) for some v; a
//     negated operator (StringNotEquals, StringNotEqualsIgnoreCase,
//     StringNotLike, NumericNotEquals, DateNotEquals, NotIpAddress,
//     ArnNotEquals, ArnNotLike) is the negation, hence true when K is
//     missing.
//   - ForAnyValue:Op: some v satisfies Op; false when K is missing or empty.
//   - ForAllValues:Op: every v satisfies Op; true when K is missing or empty.
//   - OpIfExists: true when K is missing, otherwise as Op. IfExists wins over
//     the set prefixes, so ForAnyValue:OpIfExists is true on a missing key.
//   - Null: "true" holds iff K is missing, "false" iff it is present.
//
// A request value that does not parse for the operator (a non-number for
// Numeric*, say) matches no policy value, so it fails positive operators
// and satisfies negated ones.
//
// Supported keys are listed on Request: aws:ResourceTag/<k>,
// aws:RequestTag/<k>, aws:TagKeys, aws:PrincipalAccount, aws:PrincipalArn,
// aws:PrincipalTag/<k>, aws:username, aws:SourceAccount, aws:SourceArn,
// aws:SecureTransport, aws:SourceIp, aws:CurrentTime, aws:EpochTime, plus
// aws:RequestedRegion, aws:UserAgent, aws:PrincipalType, aws:userid and any
// service key under sagemaker: or perfleet:, taken from Request.Context.
//
// # Policy variables
//
// In "2012-10-17" policies, ${key} in a Resource or NotResource, or in the
// value of a String* or Arn* condition, is replaced by the single value of
// that key in the request: ${aws:PrincipalAccount}, ${aws:PrincipalArn},
// ${aws:PrincipalTag/team}, ${aws:username}, and so on. ${key, 'default'}
// supplies a default, and ${*}, ${?} and ${$} stand for literal '*', '?'
// and '$'. Substituted text is always literal: a tag value "*" cannot widen
// a pattern. A variable whose key is missing (or multi-valued) and has no
// default makes its whole statement not apply, Allow and Deny alike.
//
// # Evaluation
//
// Evaluate(req, policies...) looks at every statement of every policy. A
// statement applies when its principal, action, resource and all conditions
// match. If any applying statement has Effect Deny, the decision is
// ExplicitDeny; otherwise, if any applying statement allows, Allow;
// otherwise ImplicitDeny. The Decision names the deciding statement.
package auth
