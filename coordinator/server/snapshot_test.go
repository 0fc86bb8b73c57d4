package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func saveBackup(t *testing.T, addr string) ([]byte, *pb.SnapshotSaveResponse) {
	t.Helper()
	st, err := pb.NewOperatorServiceClient(testConn(t, addr)).SnapshotSave(ctxT(t), &pb.SnapshotSaveRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var first *pb.SnapshotSaveResponse
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("save: %v", err)
		}
		if first == nil {
			first = m
		}
		buf.Write(m.GetData())
	}
	return buf.Bytes(), first
}

func restoreBackup(t *testing.T, addr string, data []byte) (*pb.SnapshotRestoreResponse, error) {
	t.Helper()
	up, err := pb.NewOperatorServiceClient(testConn(t, addr)).SnapshotRestore(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := min(len(data), 100<<10)
		if err := up.Send(&pb.SnapshotRestoreRequest{Data: data[:n]}); err != nil {
			break
		}
		data = data[n:]
	}
	return up.CloseAndRecv()
}

func backupInfo(t *testing.T, data []byte) state.BackupInfo {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.snap")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := state.CheckBackup(f)
	if err != nil {
		t.Fatalf("check backup: %v", err)
	}
	return info
}

func TestSnapshotSaveOnOneClusterRestoresIntoAnother(t *testing.T) {
	a := TestCluster(t, 3, nil)
	la := WaitForLeader(t, a...)
	ctx := ctxT(t)
	ca := client(t, la.Addr())
	for i := 0; i < 5; i++ {
		if _, err := ca.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: fmt.Sprintf("saved-%d", i),
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A follower answers with its own state at its applied index.
	fa := followers(a)[0]
	waitApplied(t, fa, la.State().Hash())
	data, first := saveBackup(t, fa.Addr())
	if first.GetNodeId() != fa.NodeID() || first.GetAppliedIndex() == 0 {
		t.Fatalf("first message names %q at %d", first.GetNodeId(), first.GetAppliedIndex())
	}
	info := backupInfo(t, data)
	if info.Hash != fa.State().Hash() || info.Records["workload_configs"] != 5 {
		t.Fatalf("backup hash %s records %v; node hash %s", info.Hash, info.Records, fa.State().Hash())
	}

	b := TestCluster(t, 3, nil)
	lb := WaitForLeader(t, b...)
	cb := client(t, lb.Addr())
	if _, err := cb.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "only-in-b",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	before := lb.State().Hash()

	// Damaged uploads are refused and change nothing.
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0xff
	for name, d := range map[string][]byte{"flipped byte": bad, "truncated": data[:len(data)-10], "not a backup": []byte("hello")} {
		_, err := restoreBackup(t, followers(b)[0].Addr(), d)
		if status.Code(err) != codes.InvalidArgument || !bytes.Contains([]byte(err.Error()), []byte("data")) {
			t.Errorf("%s: got %v, want InvalidArgument naming data", name, err)
		}
	}
	if lb.State().Hash() != before {
		t.Fatal("a refused restore changed the state")
	}

	// Through a follower: it checks the upload and passes it to the leader.
	resp, err := restoreBackup(t, followers(b)[0].Addr(), data)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if resp.GetHash() != info.Hash || resp.GetRecords()["workload_configs"] != 5 || resp.GetSize() != uint64(info.Size) {
		t.Fatalf("restore answered %v", resp)
	}
	lb = WaitForLeader(t, b...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		hashes := map[string]bool{}
		for _, s := range b {
			hashes[s.State().Hash()] = true
		}
		if len(hashes) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster b's nodes disagree after the restore: %v", hashes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range b {
		if _, err := s.State().WorkloadConfig("000000000000", "saved-3"); err != nil {
			t.Errorf("%s lacks a restored config: %v", s.NodeID(), err)
		}
		if _, err := s.State().WorkloadConfig("000000000000", "only-in-b"); err == nil {
			t.Errorf("%s kept a config the backup does not have", s.NodeID())
		}
	}
	// The server records are cluster b's own again, not the backup's.
	deadline = time.Now().Add(10 * time.Second)
	for {
		servers, _ := lb.State().Servers()
		ok := len(servers) == 3
		for _, srv := range servers {
			if lb.raft.GetConfiguration().Configuration().Servers == nil || !isPeer(lb, srv.GetNodeId()) || srv.GetGrpcAddr() == "" {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server records after restore: %v", servers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Writes go on after the restore.
	if _, err := client(t, followers(b)[1].Addr()).CreateAIWorkloadConfig(context.Background(), &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "after-restore",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
}

func isPeer(s *Server, id string) bool {
	for _, srv := range s.raft.GetConfiguration().Configuration().Servers {
		if string(srv.ID) == id {
			return true
		}
	}
	return false
}
