package atrest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/perfleet/perfleet/pkg/atrest/kmsfake"
)

// newFakeKMS starts a fake KMS and returns it with a real SDK client
// pointed at it.
func newFakeKMS(t *testing.T) (*kmsfake.Server, *kms.Client) {
	t.Helper()
	fake := kmsfake.New("eu-west-1", "123456789012")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
	return fake, client
}

func TestKMSKeySource(t *testing.T) {
	ctx := context.Background()
	fake, client := newFakeKMS(t)
	keyID, arn := fake.CreateKey("perfleet at rest")
	if err := fake.CreateAlias("alias/perfleet", keyID); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "datakeys.json")
	ectx := map[string]string{"cluster": "prod-1"}

	src := NewKMSKeySource(client, "alias/perfleet", path, ectx)
	kr, err := src.Load(ctx) // no file yet: generates the first key
	if err != nil {
		t.Fatal(err)
	}
	if fake.Calls("GenerateDataKey") != 1 {
		t.Fatalf("GenerateDataKey calls = %d", fake.Calls("GenerateDataKey"))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	raw, _ := os.ReadFile(path)
	var entries []kmsFileEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].KMSKeyID != arn || len(entries[0].CiphertextBlob) == 0 || !entries[0].Active {
		t.Fatalf("key file = %s", raw)
	}
	// The file holds only the wrapped key, never the plaintext one.
	plainKey := mustEntry(t, kr, kr.ActiveKeyID()).raw
	if bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(plainKey))) || bytes.Contains(raw, plainKey) {
		t.Fatal("key file holds the plaintext data key")
	}

	sealed, _ := kr.Seal([]byte("job results"), []byte("aad"))

	// A restart: a new source over the same file decrypts the stored key.
	restarted := NewKMSKeySource(client, "alias/perfleet", path, ectx)
	kr2, err := restarted.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Calls("Decrypt") != 1 || fake.Calls("GenerateDataKey") != 1 {
		t.Fatalf("restart calls: Decrypt %d, GenerateDataKey %d", fake.Calls("Decrypt"), fake.Calls("GenerateDataKey"))
	}
	if got, err := kr2.Open(sealed, []byte("aad")); err != nil || string(got) != "job results" {
		t.Fatalf("after restart: %q, %v", got, err)
	}

	// Rotation: a second GenerateDataKey, appended as the active key.
	kr3, err := restarted.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Calls("GenerateDataKey") != 2 {
		t.Fatalf("GenerateDataKey calls after rotate = %d", fake.Calls("GenerateDataKey"))
	}
	if kr3.ActiveKeyID() == kr.ActiveKeyID() || len(kr3.KeyIDs()) != 2 {
		t.Fatalf("after rotate: active %q, keys %v", kr3.ActiveKeyID(), kr3.KeyIDs())
	}
	kr4, err := NewKMSKeySource(client, arn, path, ectx).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kr4.ActiveKeyID() != kr3.ActiveKeyID() {
		t.Fatalf("reloaded active %q, want %q", kr4.ActiveKeyID(), kr3.ActiveKeyID())
	}
	if got, err := kr4.Open(sealed, []byte("aad")); err != nil || string(got) != "job results" {
		t.Fatalf("old data after rotation: %q, %v", got, err)
	}
	newSealed, _ := kr4.Seal([]byte("y"), nil)
	if id, _ := SealedKeyID(newSealed); id != kr3.ActiveKeyID() {
		t.Fatalf("new data sealed with %q", id)
	}

	// The wrong encryption context is refused by KMS.
	_, err = NewKMSKeySource(client, arn, path, map[string]string{"cluster": "staging"}).Load(ctx)
	var bad *types.InvalidCiphertextException
	if !errors.As(err, &bad) {
		t.Fatalf("wrong encryption context: %v, want InvalidCiphertextException", err)
	}
	_, err = NewKMSKeySource(client, arn, path, nil).Load(ctx)
	if !errors.As(err, &bad) {
		t.Fatalf("missing encryption context: %v, want InvalidCiphertextException", err)
	}

	// A disabled KMS key stops Load.
	if err := fake.SetEnabled(keyID, false); err != nil {
		t.Fatal(err)
	}
	_, err = NewKMSKeySource(client, arn, path, ectx).Load(ctx)
	var disabled *types.DisabledException
	if !errors.As(err, &disabled) {
		t.Fatalf("disabled key: %v, want DisabledException", err)
	}
}

func TestKMSKeySourceErrors(t *testing.T) {
	ctx := context.Background()
	fake, client := newFakeKMS(t)
	dir := t.TempDir()

	_, err := NewKMSKeySource(client, "alias/missing", filepath.Join(dir, "a.json"), nil).Load(ctx)
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown KMS key: %v, want NotFoundException", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "a.json")); statErr == nil {
		t.Fatal("failed Load left a key file")
	}

	keyID, _ := fake.CreateKey("")
	path := filepath.Join(dir, "b.json")
	if _, err := NewKMSKeySource(client, keyID, path, nil).Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKMSKeySource(client, keyID, path, nil).Load(ctx); err == nil {
		t.Fatal("world-readable KMS key file accepted")
	}
}
