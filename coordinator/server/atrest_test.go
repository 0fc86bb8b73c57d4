package server

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/pkg/atrest"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
)

// dataDirHolds reports the files under dir that contain marker.
func dataDirHolds(t *testing.T, dir, marker string) []string {
	t.Helper()
	var hits []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(marker)) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// TestEncryptionAtRestSealsLogAndSnapshots writes a planted secret and a
// marked workload config through a node with a keyring, snapshots, rotates
// the key, writes more, restarts, and checks that the state came back and
// that no file in the data dir holds either in plain text. The same run
// without a keyring finds them, so the check can fail.
func TestEncryptionAtRestSealsLogAndSnapshots(t *testing.T) {
	const marker, planted = "marker-5c1d0e-in-the-spec", "planted-secret-9e2b"
	run := func(t *testing.T, keyring string) (dataDir string) {
		cfg := TestConfig(t, "enc")
		cfg.EncryptionKeyringFile = keyring
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		WaitForLeader(t, s)
		ctx := ctxT(t)
		conn := testConn(t, s.Addr())
		io, aclc := pb.NewInferenceOptimizationClient(conn), pb.NewACLServiceClient(conn)
		spec := testSpec + "# " + marker + "\n"
		if _, err := io.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := aclc.PutSecret(ctx, &pb.PutSecretRequest{Name: "hf", Value: []byte(planted)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Raft().Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		if keyring != "" {
			if _, err := atrest.RotateFile(keyring); err != nil {
				t.Fatal(err)
			}
			if err := s.ReloadKeyring(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := aclc.PutSecret(ctx, &pb.PutSecretRequest{Name: "hf2", Value: []byte(planted)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(); err != nil {
			t.Fatal(err)
		}
		// Restart on the same data dir: everything is readable again,
		// including entries sealed before and after the rotation.
		s2, err := New(cfg)
		if err != nil {
			t.Fatalf("restart: %v", err)
		}
		defer s2.Shutdown()
		WaitForLeader(t, s2)
		io2 := pb.NewInferenceOptimizationClient(testConn(t, s2.Addr()))
		wl, err := io2.DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
		if err != nil || !strings.Contains(wl.String(), marker) {
			t.Fatalf("after restart: %v, %v", wl, err)
		}
		if sec, err := s2.State().Secret("000000000000", "hf2"); err != nil || string(sec.GetValue()) != planted {
			t.Fatalf("secret after restart: %v, %v", sec, err)
		}
		return cfg.DataDir
	}
	t.Run("plaintext control", func(t *testing.T) {
		if hits := dataDirHolds(t, run(t, ""), planted); len(hits) == 0 {
			t.Fatal("without a keyring the planted secret should be on disk; the check below would prove nothing")
		}
	})
	t.Run("keyring", func(t *testing.T) {
		keyring := filepath.Join(t.TempDir(), "keyring.json")
		if _, err := atrest.GenerateKeyringFile(keyring); err != nil {
			t.Fatal(err)
		}
		dir := run(t, keyring)
		for _, m := range []string{marker, planted} {
			if hits := dataDirHolds(t, dir, m); len(hits) > 0 {
				t.Errorf("%q found in plain text in %v", m, hits)
			}
		}
	})
}

// TestEncryptedResults runs a job with --encrypt-results: the files on disk
// hold no plaintext metric names, and the keyring reads them back.
func TestEncryptedResults(t *testing.T) {
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	kr, err := atrest.GenerateKeyringFile(keyring)
	if err != nil {
		t.Fatal(err)
	}
	_, target := simTarget(t)
	_, c := fleetOfWith(t, 1, func(_ int, cfg *Config) { cfg.EncryptionKeyringFile, cfg.EncryptResults = keyring, true })
	out := t.TempDir()
	createJob(t, c, "sealed", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 2\n  request_count: 6\n  isl: 16\n  osl: 8\n", target, out)
	eventually(t, 30*time.Second, "job completed", func() bool { return jobStatus(t, c, "sealed").GetAiBenchmarkJobStatus() == "Completed" })
	if hits := dataDirHolds(t, out, "time_to_first_token"); len(hits) > 0 {
		t.Fatalf("result files in plain text: %v", hits)
	}
	st, err := resultstore.Open(context.Background(), "file://"+out, resultstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "sealed/")
	if err != nil || len(objs) == 0 {
		t.Fatalf("no result files: %v", err)
	}
	found := false
	for _, o := range objs {
		rc, err := resultstore.Sealed(st, kr).Get(context.Background(), o.Key)
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		found = found || bytes.Contains(b, []byte("time_to_first_token"))
	}
	if !found {
		t.Fatal("no decrypted result file names time_to_first_token")
	}
}
