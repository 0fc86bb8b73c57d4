package audit

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	perfleetv1 "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// planted is the secret value hidden throughout the test messages.
const planted = "PLANTED-s3cr3t-value-42"

// secretRef is a reference to a secret, which must survive.
const secretRef = "arn:aws:secretsmanager:us-west-2:123456789012:secret:hf-AbCdEf"

// assertRedacted checks that out is valid JSON, never contains the planted
// value (raw or base64) and contains every string in keep.
func assertRedacted(t *testing.T, out []byte, keep ...string) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("output is not valid JSON: %s", out)
	}
	s := string(out)
	for _, leak := range []string{planted, base64.StdEncoding.EncodeToString([]byte(planted))} {
		if strings.Contains(s, leak) {
			t.Errorf("secret %q leaked in %s", leak, s)
		}
	}
	for _, k := range keep {
		if !strings.Contains(s, k) {
			t.Errorf("%q missing from %s", k, s)
		}
	}
	if !strings.Contains(s, Hidden) {
		t.Errorf("no %s marker in %s", Hidden, s)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedactModelServerSpec(t *testing.T) {
	spec := &perfleetv1.ModelServerSpec{
		Id:        "srv-1",
		Framework: "VLLM",
		Model:     "s3://models/llama",
		ExtraArgs: []string{
			"--api-key=" + planted,
			"--hf-token", planted,
			"HF_TOKEN=" + planted,
			"--max-num-batched-tokens", "8192",
			"--tokenizer", "meta-llama/Llama-3.1-8B",
			"--port", "8000",
		},
		Env: map[string]string{
			"HF_TOKEN":              planted,
			"AWS_SECRET_ACCESS_KEY": planted,
			"AWS_SESSION_TOKEN":     planted,
			"DB_PASSWORD":           planted,
			"Authorization":         "Bearer " + planted,
			"AWS_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
			"HF_TOKEN_SECRET_ARN":   "arn:aws:secretsmanager:us-west-2:123456789012:secret:x",
			"TOKEN_ID":              "tok-123",
			"API_KEY_REF":           secretRef,
			"PATH":                  "/usr/bin",
		},
		GpuCount: 2,
	}
	out := Redact(spec)
	assertRedacted(t, out,
		"AKIAIOSFODNN7EXAMPLE", "arn:aws:secretsmanager:us-west-2:123456789012:secret:x",
		"tok-123", secretRef, "/usr/bin", "s3://models/llama", "8192", "meta-llama/Llama-3.1-8B",
		`"--api-key=`+Hidden+`"`, `"HF_TOKEN=`+Hidden+`"`, `"gpuCount":2`, `"8000"`)

	var got struct {
		ExtraArgs []string          `json:"extraArgs"`
		Env       map[string]string `json:"env"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DB_PASSWORD", "Authorization"} {
		if got.Env[k] != Hidden {
			t.Errorf("env %s = %q, want %s", k, got.Env[k], Hidden)
		}
	}
	if got.ExtraArgs[2] != Hidden {
		t.Errorf("value after --hf-token = %q", got.ExtraArgs[2])
	}
	if spec.Env["HF_TOKEN"] != planted {
		t.Error("Redact modified its input")
	}
}

func TestRedactWorkloadConfigRequest(t *testing.T) {
	inlineYAML := strings.Join([]string{
		"benchmark:",
		"  type: aiperf",
		"parameters:",
		"  concurrency: [1, 8]",
		"  output_tokens_mean: 256",
		"  hf_token: " + planted,
		"  headers:",
		"    Authorization: Bearer " + planted,
		"    X-Trace: abc",
		"secrets:",
		"  api_key: " + secretRef,
		"  hf_token: " + planted,
		"",
	}, "\n")
	req := &perfleetv1.CreateAIWorkloadConfigRequest{
		AiWorkloadConfigName: "llama-sweep",
		AiWorkloadConfigs: &perfleetv1.AIWorkloadConfigs{
			WorkloadSpec: &perfleetv1.WorkloadSpec{Inline: inlineYAML},
		},
		Tags: []*perfleetv1.Tag{
			{Key: "team", Value: "inference"},
			{Key: "github_token", Value: planted},
		},
		ClientToken: "idem-123",
	}
	out := Redact(req)
	assertRedacted(t, out, "llama-sweep", "inference", "idem-123", "aiperf", secretRef, "X-Trace", "github_token",
		"output_tokens_mean: 256")

	// The same document as JSON.
	req.AiWorkloadConfigs.WorkloadSpec.Inline = `{"benchmark":{"type":"aiperf"},"parameters":{"hf_token":"` + planted + `","isl":512}}`
	assertRedacted(t, Redact(req), "aiperf", "isl")

	// A document that is not valid YAML still has its secret line hidden.
	req.AiWorkloadConfigs.WorkloadSpec.Inline = "parameters:\n  hf_token: " + planted + "\n  bad: [unclosed\n"
	assertRedacted(t, Redact(req), "unclosed")

	// YAML aliases: the anchor of a secret reached through an alias is hidden.
	req.AiWorkloadConfigs.WorkloadSpec.Inline = "x: &a " + planted + "\nparameters:\n  hf_token: *a\n"
	assertRedacted(t, Redact(req))

	// Secrets in a second YAML document.
	req.AiWorkloadConfigs.WorkloadSpec.Inline = "a: b\n---\npassword: " + planted + "\n"
	assertRedacted(t, Redact(req))
}

func TestRedactStructAndAny(t *testing.T) {
	st := mustStruct(t, map[string]any{
		"model":      "llama",
		"max_tokens": 512,
		"credentials": map[string]any{
			"accessKeyId":     "AKIAIOSFODNN7EXAMPLE",
			"secretAccessKey": planted,
			"sessionToken":    planted,
			"expiration":      planted,
		},
		"nested": []any{
			map[string]any{"Password": planted, "user": "alice"},
			map[string]any{"name": "PRIVATE_KEY", "value": planted},
			map[string]any{"deeper": map[string]any{"x-api-key": planted, "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}},
		},
		"pin_password": 123456,
	})
	out := Redact(st)
	assertRedacted(t, out, "llama", "AKIAIOSFODNN7EXAMPLE", "alice", "PRIVATE_KEY",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:db", `"max_tokens":512`)
	if strings.Contains(string(out), "123456,") || strings.Contains(string(out), ":123456}") {
		t.Errorf("numeric secret leaked: %s", out)
	}

	// Struct inside Any, and a perfleet message inside Any.
	a, err := anypb.New(st)
	if err != nil {
		t.Fatal(err)
	}
	assertRedacted(t, Redact(a), "AKIAIOSFODNN7EXAMPLE", "type.googleapis.com/google.protobuf.Struct")
	a2, err := anypb.New(&perfleetv1.ModelServerSpec{Env: map[string]string{"OPENAI_API_KEY": planted}})
	if err != nil {
		t.Fatal(err)
	}
	assertRedacted(t, Redact(a2), "OPENAI_API_KEY")

	// A bare Value and a wrapper.
	v := structpb.NewStructValue(mustStruct(t, map[string]any{"token": planted}))
	assertRedacted(t, Redact(v))
	if got := string(Redact(wrapperspb.String("plain"))); got != `"plain"` {
		t.Errorf("StringValue = %s", got)
	}
}

func TestRedactTypedFields(t *testing.T) {
	// Bytes fields: the HMAC page-token key is hidden, raw and base64.
	meta := &perfleetv1.ClusterMeta{ClusterId: "c-1", PageTokenKey: []byte(planted)}
	assertRedacted(t, Redact(meta), "c-1")

	// Numbers named after tokens are metrics, not secrets.
	lp := &perfleetv1.LevelProgress{Name: "c8", TimeToFirstTokenP50: 12.5, OutputTokenThroughput: 900}
	out := string(Redact(lp))
	for _, k := range []string{`"timeToFirstTokenP50":12.5`, `"outputTokenThroughput":900`} {
		if !strings.Contains(out, k) {
			t.Errorf("%s missing from %s", k, out)
		}
	}

	// A nil message gives nil; a typed nil too.
	if Redact(nil) != nil {
		t.Error("Redact(nil) != nil")
	}
	var nilSpec *perfleetv1.ModelServerSpec
	if Redact(nilSpec) != nil {
		t.Error("Redact(typed nil) != nil")
	}
	// An unmarshallable message (invalid UTF-8) is hidden as a whole.
	bad := &perfleetv1.Tag{Key: "k", Value: "\xff" + planted}
	if got := string(Redact(bad)); got != `"`+Hidden+`"` {
		t.Errorf("invalid message = %s", got)
	}
	_ = proto.Clone(bad)
}

func TestRedactJSON(t *testing.T) {
	in := `{"Authorization":"Bearer ` + planted + `","requestId":"r-1","params":{"client_secret":"` + planted +
		`","client_id":"app-7","list":["a","--password","` + planted + `"],"n":1.50,"big":12345678901234567890}}`
	out := RedactJSON([]byte(in))
	assertRedacted(t, out, "r-1", "app-7", `"n":1.50`, "12345678901234567890", "--password")

	if got := RedactJSON(nil); got != nil {
		t.Errorf("RedactJSON(nil) = %s", got)
	}
	if got := string(RedactJSON([]byte(`{"password": "` + planted + `"`))); got != `"`+Hidden+`"` {
		t.Errorf("invalid JSON = %s", got)
	}
	if got := string(RedactJSON([]byte(`{"a":1} {"token":"x"}`))); got != `"`+Hidden+`"` {
		t.Errorf("trailing JSON = %s", got)
	}
	if got := string(RedactJSON([]byte(`{"url":"https://x/?a=<b>&c"}`))); got != `{"url":"https://x/?a=<b>&c"}` {
		t.Errorf("HTML escaping = %s", got)
	}
}

func TestIsSensitiveName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"password", true}, {"db_passwd", true}, {"clientSecret", true}, {"client_secret", true},
		{"HF_TOKEN", true}, {"sessionToken", true}, {"X-Amz-Security-Token", true},
		{"private_key", true}, {"privateKey", true}, {"x-api-key", true}, {"API_KEY", true},
		{"Authorization", true}, {"credentials", true}, {"accessKeySecret", true},
		{"secret_arn", false}, {"secretArn", false}, {"token_id", false}, {"tokenId", false},
		{"accessor_id", false}, {"access_key_id", false}, {"accessKeyId", false}, {"HF_TOKEN_ID", false},
		{"secret_arns", false}, {"SECRETID", true},
		{"nextToken", false}, {"next_token", false}, {"clientToken", false},
		{"tokenizer", false}, {"tokenizer_mode", false},
		{"model", false}, {"name", false}, {"id", false}, {"paid", false},
	}
	for _, tt := range tests {
		if got := IsSensitiveName(tt.name); got != tt.want {
			t.Errorf("IsSensitiveName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
