package secrets

import (
	"errors"
	"strings"
	"testing"

	"github.com/perfleet/perfleet/pkg/workload"
)

func TestParseRefAccepts(t *testing.T) {
	long := strings.Repeat("a", MaxSecretsManagerName)
	for _, tc := range []struct {
		in   string
		want Ref
	}{
		{"arn:aws:secretsmanager:us-west-2:123456789012:secret:hf",
			Ref{Kind: KindSecretsManager, Partition: "aws", Region: "us-west-2", Account: "123456789012", Name: "hf"}},
		{"arn:aws:secretsmanager:us-west-2:123456789012:secret:team/hf_token-AbC1eF",
			Ref{Kind: KindSecretsManager, Partition: "aws", Region: "us-west-2", Account: "123456789012", Name: "team/hf_token", Suffix: "AbC1eF"}},
		{"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a+b=c.d@e",
			Ref{Kind: KindSecretsManager, Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "123456789012", Name: "a+b=c.d@e"}},
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:" + long + "-abcdef",
			Ref{Kind: KindSecretsManager, Partition: "aws-cn", Region: "cn-north-1", Account: "123456789012", Name: long, Suffix: "abcdef"}},
		// Too short a tail to be a suffix.
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:my-key",
			Ref{Kind: KindSecretsManager, Partition: "aws", Region: "eu-west-1", Account: "123456789012", Name: "my-key"}},
		// Nothing before the hyphen: the whole resource is the name.
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:-abcdef",
			Ref{Kind: KindSecretsManager, Partition: "aws", Region: "eu-west-1", Account: "123456789012", Name: "-abcdef"}},
		{"perfleet:secret/hf", Ref{Kind: KindStore, Name: "hf"}},
		{"perfleet:secret/team/a_b.c-d", Ref{Kind: KindStore, Name: "team/a_b.c-d"}},
		{"perfleet:secret/k+v=x@y", Ref{Kind: KindStore, Name: "k+v=x@y"}},
		{"perfleet:secret/" + strings.Repeat("x", MaxStoreName), Ref{Kind: KindStore, Name: strings.Repeat("x", MaxStoreName)}},
	} {
		got, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("ParseRef(%.80q) = %v", tc.in, err)
			continue
		}
		if tc.want.Kind == KindSecretsManager {
			tc.want.ARN = tc.in
		}
		if got != tc.want {
			t.Errorf("ParseRef(%.80q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestParseRefRejectsNamingTheRule(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:"
	for _, tc := range []struct{ in, rule string }{
		{"", ruleForm},
		{"hf_0123456789abcdefPLANTED", ruleForm},
		{"secret:hf", ruleForm},
		{"arn:aws:secretsmanager:us-west-2:123456789012", ruleForm},
		{"arn:gcp:secretsmanager:us-west-2:123456789012:secret:hf", rulePartition},
		{"arn:aws:ssm:us-west-2:123456789012:secret:hf", ruleService},
		{"arn:aws:secretsmanager:US-WEST-2:123456789012:secret:hf", ruleRegion},
		{"arn:aws:secretsmanager::123456789012:secret:hf", ruleRegion},
		{"arn:aws:secretsmanager:us-west-2:12345:secret:hf", ruleAccount},
		{"arn:aws:secretsmanager:us-west-2:12345678901a:secret:hf", ruleAccount},
		{"arn:aws:secretsmanager:us-west-2:123456789012:parameter:hf", ruleResource},
		{arn, ruleSMName},
		{arn + "has space", ruleSMName},
		{arn + "colon:inside", ruleSMName},
		{arn + "bang!", ruleSMName},
		{arn + strings.Repeat("a", MaxSecretsManagerName+1), ruleSMName},
		{"perfleet:secret/", ruleStoreName},
		{"perfleet:secret/-leading-dash", ruleStoreName},
		{"perfleet:secret/a#b", ruleStoreName},
		{"perfleet:secret/with space", ruleStoreName},
		{"perfleet:secret/" + strings.Repeat("x", MaxStoreName+1), ruleStoreName},
	} {
		_, err := ParseRef(tc.in)
		var re *RefError
		if !errors.As(err, &re) || re.Rule != tc.rule || !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseRef(%.80q) = %v, want rule %q", tc.in, err, tc.rule)
			continue
		}
		if tc.in != "" && strings.Contains(err.Error(), tc.in) {
			t.Errorf("ParseRef(%.80q) error echoes its input: %v", tc.in, err)
		}
	}
}

// The Secrets Manager references ParseRef accepts are those the workload
// parser accepts.
func TestParseRefAgreesWithWorkloadOnARNs(t *testing.T) {
	for _, s := range []string{
		"arn:aws:secretsmanager:us-west-2:123456789012:secret:hf",
		"arn:aws:secretsmanager:us-west-2:123456789012:secret:hf-AbCdEf",
		"arn:aws-iso-b:secretsmanager:us-isob-east-1:123456789012:secret:a/b",
		"arn:aws:secretsmanager:us-west-2:123456789012:secret:",
		"arn:aws:secretsmanager:us-west-2:1234567890123:secret:hf",
		"arn:aws:secretsmanager:uswest2:123456789012:secret:hf",
		"arn:aws:secretsmanager:us-west-2:123456789012:secret:a b",
		"arn:aws:s3:us-west-2:123456789012:secret:hf",
	} {
		_, err := ParseRef(s)
		if got, want := err == nil, workload.IsSecretReference(s); got != want {
			t.Errorf("%q: ParseRef accepts %v, workload accepts %v", s, got, want)
		}
	}
}

func TestKindString(t *testing.T) {
	if KindSecretsManager.String() != "secretsmanager" || KindStore.String() != "store" || Kind(0).String() != "unknown" {
		t.Fatal("Kind.String")
	}
	if !(Ref{}).IsZero() || (Ref{}).String() != "" {
		t.Fatal("zero Ref")
	}
}
