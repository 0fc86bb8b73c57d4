// Package secrets turns the secret references of a workload into secret
// values for one shard, and keeps those values out of logs.
//
// A workload's secrets section maps a parameter name (hf_token, api_key) to
// a reference:
//
//	arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>[-AbCdEf]
//	perfleet:secret/<name>
//
// [ParseRef] validates a reference. A [Resolver] fetches the value a
// reference names; [SecretsManagerResolver] reads AWS Secrets Manager with
// the caller's credentials, and [SecretsManagerResolver.AsRole] derives
// one that reads as a job's IAM role, through STS AssumeRole. [ResolveBundle]
// resolves every reference of a shard, fetching each distinct reference
// once, and [Bundle.Wipe] zeroes the values when the shard is done.
//
// A [Value] holds the secret bytes. It prints and marshals as
// "[REDACTED]" whatever verb or encoder is used, so a value that ends up in a
// log line, an error or a JSON document does not leak; [Value.Reveal] is the
// one way to read it. Errors from this package name the parameter and the
// reference that failed, never the value, and ParseRef never echoes its
// input (a misconfigured reference may be the secret itself).
//
// Wiping is best effort: Go may have copied the bytes (a SecretString
// arrives as an immutable Go string, and the HTTP and JSON layers buffer
// the response), but the copy the program keeps using is zeroed.
package secrets
