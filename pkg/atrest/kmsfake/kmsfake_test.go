package kmsfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/perfleet/perfleet/pkg/atrest/kmsfake"
)

func setup(t *testing.T) (*kmsfake.Server, *httptest.Server, *kms.Client) {
	t.Helper()
	fake := kmsfake.New("", "")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:           kmsfake.DefaultRegion,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
	return fake, srv, client
}

func TestCreateDescribeAlias(t *testing.T) {
	ctx := context.Background()
	_, _, c := setup(t)
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("test key")})
	if err != nil {
		t.Fatal(err)
	}
	md := out.KeyMetadata
	id, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	if arn != "arn:aws:kms:us-east-1:111122223333:key/"+id || !md.Enabled || md.KeyState != types.KeyStateEnabled ||
		md.KeySpec != types.KeySpecSymmetricDefault || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt ||
		md.CreationDate == nil || md.CreationDate.IsZero() || aws.ToString(md.Description) != "test key" {
		t.Fatalf("metadata = %+v", md)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{id, arn, "alias/app", "arn:aws:kms:us-east-1:111122223333:alias/app"} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil {
			t.Fatalf("DescribeKey(%s): %v", ref, err)
		}
		if aws.ToString(d.KeyMetadata.KeyId) != id {
			t.Fatalf("DescribeKey(%s) = %s", ref, aws.ToString(d.KeyMetadata.KeyId))
		}
	}
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(id)})
	var exists *types.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate alias: %v", err)
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/nope")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown alias: %v", err)
	}
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	if err == nil {
		t.Fatal("asymmetric key accepted")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	ctx := context.Background()
	fake, _, c := setup(t)
	id, arn := fake.CreateKey("")
	otherID, _ := fake.CreateKey("")
	ectx := map[string]string{"purpose": "test", "tenant": "a"}

	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("hello"), EncryptionContext: ectx})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(enc.KeyId) != arn || bytes.Contains(enc.CiphertextBlob, []byte("hello")) {
		t.Fatalf("Encrypt = %+v", enc)
	}
	// No KeyId needed: the blob names its key.
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx})
	if err != nil {
		t.Fatal(err)
	}
	if string(dec.Plaintext) != "hello" || aws.ToString(dec.KeyId) != arn {
		t.Fatalf("Decrypt = %q from %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}

	var invalid *types.InvalidCiphertextException
	for name, wrong := range map[string]map[string]string{
		"missing": nil,
		"changed": {"purpose": "test", "tenant": "b"},
		"extra":   {"purpose": "test", "tenant": "a", "x": "y"},
	} {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: wrong})
		if !errors.As(err, &invalid) {
			t.Errorf("%s context: %v, want InvalidCiphertextException", name, err)
		}
	}
	bad := bytes.Clone(enc.CiphertextBlob)
	bad[len(bad)-1] ^= 1
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: bad, EncryptionContext: ectx}); !errors.As(err, &invalid) {
		t.Errorf("tampered blob: %v", err)
	}
	var incorrect *types.IncorrectKeyException
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx, KeyId: aws.String(otherID)}); !errors.As(err, &incorrect) {
		t.Errorf("other KeyId: %v, want IncorrectKeyException", err)
	}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx, KeyId: aws.String(arn)}); err != nil {
		t.Errorf("matching KeyId: %v", err)
	}

	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	var disabled *types.DisabledException
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx}); !errors.As(err, &disabled) {
		t.Errorf("disabled key Decrypt: %v", err)
	}
	if _, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); !errors.As(err, &disabled) {
		t.Errorf("disabled key Encrypt: %v", err)
	}
	d, _ := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if d.KeyMetadata.Enabled || d.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Errorf("disabled key metadata = %+v", d.KeyMetadata)
	}
	if _, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx}); err != nil {
		t.Errorf("re-enabled key: %v", err)
	}
}

func TestGenerateDataKey(t *testing.T) {
	ctx := context.Background()
	fake, _, c := setup(t)
	id, arn := fake.CreateKey("")

	out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Plaintext) != 32 || aws.ToString(out.KeyId) != arn || len(out.CiphertextBlob) == 0 {
		t.Fatalf("GenerateDataKey = %+v", out)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
	if err != nil || !bytes.Equal(dec.Plaintext, out.Plaintext) {
		t.Fatalf("Decrypt data key: %v", err)
	}
	out, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), NumberOfBytes: aws.Int32(64)})
	if err != nil || len(out.Plaintext) != 64 {
		t.Fatalf("NumberOfBytes 64: %d bytes, %v", len(out.Plaintext), err)
	}

	var smithyErr smithy.APIError
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id)})
	if !errors.As(err, &smithyErr) || smithyErr.ErrorCode() != "ValidationException" {
		t.Errorf("no size: %v", err)
	}
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	if !errors.As(err, &smithyErr) || smithyErr.ErrorCode() != "ValidationException" {
		t.Errorf("both sizes: %v", err)
	}
	var nf *types.NotFoundException
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("11111111-2222-3333-4444-555555555555"), KeySpec: types.DataKeySpecAes256})
	if !errors.As(err, &nf) || !strings.Contains(aws.ToString(nf.Message), "11111111-2222-3333-4444-555555555555") {
		t.Errorf("unknown key: %v", err)
	}
}

// TestWireFormat checks the raw protocol: errors are HTTP 400 with
// {"__type", "message"}, and requests need SigV4 credentials for the
// server's region.
func TestWireFormat(t *testing.T) {
	_, srv, _ := setup(t)
	post := func(target, auth, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("body %q: %v", raw, err)
		}
		return resp.StatusCode, m
	}
	good := "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00"

	code, m := post("TrentService.DescribeKey", good, `{"KeyId":"alias/none"}`)
	if code != 400 || m["__type"] != "NotFoundException" || m["message"] == "" {
		t.Errorf("not found: %d %v", code, m)
	}
	code, m = post("TrentService.DescribeKey", "", `{"KeyId":"x"}`)
	if code != 400 || m["__type"] != "MissingAuthenticationTokenException" {
		t.Errorf("no auth: %d %v", code, m)
	}
	wrongRegion := strings.Replace(good, "us-east-1", "eu-west-1", 1)
	code, m = post("TrentService.DescribeKey", wrongRegion, `{"KeyId":"x"}`)
	if code != 400 || m["__type"] != "InvalidSignatureException" {
		t.Errorf("wrong region: %d %v", code, m)
	}
	code, m = post("TrentService.NoSuchThing", good, `{}`)
	if code != 400 || m["__type"] != "UnknownOperationException" {
		t.Errorf("unknown op: %d %v", code, m)
	}
	code, m = post("TrentService.CreateKey", good, `{"Description":`)
	if code != 400 || m["__type"] != "SerializationException" {
		t.Errorf("bad json: %d %v", code, m)
	}
	code, m = post("TrentService.CreateKey", good, `{}`)
	if md, _ := m["KeyMetadata"].(map[string]any); code != 200 || md["KeyId"] == "" {
		t.Errorf("create: %d %v", code, m)
	}
}
