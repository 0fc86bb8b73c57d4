package names

import (
	"strings"
	"testing"

	"github.com/perfleet/perfleet/pkg/arn"
)

// ruleCase is one input of a check: want is "" for a valid input, otherwise a
// substring of the rule the error must state.
type ruleCase struct {
	name, in, want string
}

func runRuleCases(t *testing.T, check func(string) error, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("check(%q) = %v, want nil", tc.in, err)
			case tc.want != "" && err == nil:
				t.Fatalf("check(%q) = nil, want an error containing %q", tc.in, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("check(%q) = %q, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	runRuleCases(t, Name, []ruleCase{
		{"single char", "a", ""},
		{"inner hyphens", "my--config-1", ""},
		{"63 chars", strings.Repeat("a", 63), ""},
		{"digits first", "9lives", ""},
		{"empty", "", "is required"},
		{"64 chars", strings.Repeat("a", 64), "at most 63 characters"},
		{"leading hyphen", "-abc", "must match"},
		{"trailing hyphen", "abc-", "must match"},
		{"underscore", "my_config", "must match"},
		{"dot", "my.config", "must match"},
		{"space", "my config", "must match"},
		{"non-ascii", "cönfig", "must match"},
	})
}

func TestIdentifier(t *testing.T) {
	sc := arn.Scope{Partition: "aws", Region: "us-east-1"}
	for _, tc := range []struct {
		name, in              string
		wantName, wantAccount string
		wantErr               string
	}{
		{"bare name", "cfg-1", "cfg-1", "", ""},
		{"own arn", sc.Build("123456789012", arn.WorkloadConfig, "cfg-1"), "cfg-1", "123456789012", ""},
		{"other account arn", sc.Build("210987654321", arn.WorkloadConfig, "cfg-1"), "cfg-1", "210987654321", ""},
		{"gov partition", "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:ai-workload-config/c", "c", "123456789012", ""},
		{"empty", "", "", "", "is required"},
		{"too long", strings.Repeat("a", 257), "", "", "at most 256 characters"},
		{"bad bare name", "bad_name", "", "", "must match"},
		{"wrong resource type", sc.Build("123456789012", arn.BenchmarkJob, "cfg-1"), "", "", "ARN names a ai-benchmark-job, want a ai-workload-config"},
		{"malformed arn", "arn:aws:sagemaker:us-east-1:12345:ai-workload-config/cfg-1", "", "", "malformed ARN"},
		{"bad name in arn", sc.Build("123456789012", arn.WorkloadConfig, "cfg-"), "", "", "ARN resource name must match"},
		{"long name in arn", sc.Build("123456789012", arn.WorkloadConfig, strings.Repeat("a", 64)), "", "", "at most 63"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, account, err := Identifier(tc.in, arn.WorkloadConfig)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Identifier(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || name != tc.wantName || account != tc.wantAccount {
				t.Fatalf("Identifier(%q) = (%q, %q, %v), want (%q, %q, nil)", tc.in, name, account, err, tc.wantName, tc.wantAccount)
			}
		})
	}
}

func TestNameContains(t *testing.T) {
	runRuleCases(t, NameContains, []ruleCase{
		{"empty", "", ""},
		{"fragment", "-cfg-", ""},
		{"63 chars", strings.Repeat("x", 63), ""},
		{"64 chars", strings.Repeat("x", 64), "at most 63 characters"},
		{"underscore", "a_b", "must match [a-zA-Z0-9-]*"},
		{"wildcard", "a*", "must match"},
	})
}

func TestRoleARN(t *testing.T) {
	runRuleCases(t, RoleARN, []ruleCase{
		{"plain role", "arn:aws:iam::123456789012:role/PerfleetRole", ""},
		{"path role", "arn:aws:iam::123456789012:role/service-role/Perf+=,.@-_", ""},
		{"china partition", "arn:aws-cn:iam::123456789012:role/r", ""},
		{"empty", "", "is required"},
		{"too short", "arn:aws:iam::1:role", "must be 20-2048 characters"},
		{"too long", "arn:aws:iam::123456789012:role/" + strings.Repeat("r", 2048), "must be 20-2048 characters"},
		{"user not role", "arn:aws:iam::123456789012:user/bob", "must be an IAM role ARN"},
		{"short account", "arn:aws:iam::12345678901:role/abcdef", "must be an IAM role ARN"},
		{"region set", "arn:aws:iam:us-east-1:123456789012:role/r", "must be an IAM role ARN"},
		{"bad character", "arn:aws:iam::123456789012:role/a b", "must be an IAM role ARN"},
	})
}

func TestTagKey(t *testing.T) {
	runRuleCases(t, TagKey, []ruleCase{
		{"simple", "team", ""},
		{"all allowed punctuation", "a b_.:/=+-@", ""},
		{"unicode letters", "Größe", ""},
		{"128 chars", strings.Repeat("k", 128), ""},
		{"128 runes multibyte", strings.Repeat("é", 128), ""},
		{"empty", "", "is required"},
		{"129 chars", strings.Repeat("k", 129), "at most 128 characters"},
		{"bad character", "a*b", "may contain only"},
		{"aws prefix", "aws:owner", "reserved prefix aws:"},
		{"AWS prefix any case", "AWS:owner", "reserved prefix aws:"},
	})
}

func TestTagValue(t *testing.T) {
	runRuleCases(t, TagValue, []ruleCase{
		{"empty", "", ""},
		{"aws prefix allowed in values", "aws:thing", ""},
		{"256 chars", strings.Repeat("v", 256), ""},
		{"257 chars", strings.Repeat("v", 257), "at most 256 characters"},
		{"bad character", "a#b", "may contain only"},
	})
}

func TestLocation(t *testing.T) {
	runRuleCases(t, Location, []ruleCase{
		{"s3 bucket", "s3://my-bucket", ""},
		{"s3 prefix", "s3://my.bucket-1/results/run 1/", ""},
		{"file absolute", "file:///var/lib/perfleet/results", ""},
		{"empty", "", "is required"},
		{"too long", "s3://my-bucket/" + strings.Repeat("p", 1024), "at most 1024 characters"},
		{"http", "http://my-bucket/x", `got scheme "http"`},
		{"no scheme", "my-bucket/x", `got scheme ""`},
		{"relative file", "file://relative/path", "must be absolute"},
		{"opaque file", "file:relative", "must be absolute"},
		{"upper-case bucket", "s3://My-Bucket/x", "s3 bucket"},
		{"short bucket", "s3://ab/x", "s3 bucket"},
		{"underscore bucket", "s3://my_bucket/x", "s3 bucket"},
		{"trailing hyphen bucket", "s3://bucket-/x", "s3 bucket"},
		{"no bucket", "s3:///x", "s3 bucket"},
		{"unparsable", "s3://bad bucket\x7f/x", "must be s3://bucket/prefix or file:///absolute/path"},
	})
}

func TestChannelName(t *testing.T) {
	runRuleCases(t, ChannelName, []ruleCase{
		{"dataset", "dataset", ""},
		{"punctuation", "a.b-c_d", ""},
		{"64 chars", strings.Repeat("c", 64), ""},
		{"empty", "", "is required"},
		{"65 chars", strings.Repeat("c", 65), "1-64 characters"},
		{"space", "my channel", "1-64 characters"},
		{"slash", "a/b", "1-64 characters"},
	})
}

func TestVPCID(t *testing.T) {
	runRuleCases(t, VPCID, []ruleCase{
		{"security group", "sg-0123456789abcdef0", ""},
		{"subnet", "subnet-abc", ""},
		{"empty", "", "1-32 characters"},
		{"33 chars", strings.Repeat("a", 33), "1-32 characters"},
		{"underscore", "sg_1", "1-32 characters"},
	})
}

func TestClientToken(t *testing.T) {
	runRuleCases(t, ClientToken, []ruleCase{
		{"uuid", "0b7e6c1a-5f3e-4c1e-9a4f-1d2c3b4a5f6e", ""},
		{"punctuation", "a_b.c:d-e", ""},
		{"64 chars", strings.Repeat("t", 64), ""},
		{"empty", "", "1-64 characters"},
		{"65 chars", strings.Repeat("t", 65), "1-64 characters"},
		{"space", "a b", "1-64 characters"},
		{"slash", "a/b", "1-64 characters"},
	})
}
