package server

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestAuditExportWritesEveryRecordOnce exports the audit log to JSON-lines
// files uploaded to a file:// location and checks that, after shutdown,
// the uploaded files hold each stored record exactly once.
func TestAuditExportWritesEveryRecordOnce(t *testing.T) {
	out := t.TempDir()
	s := TestCluster(t, 1, func(_ int, c *Config) {
		c.AuditExportDir = filepath.Join(t.TempDir(), "audit")
		c.AuditExportLocation = "file://" + out
		c.AuditExportMaxBytes = 4096 // several files
	})[0]
	ctx := ctxT(t)
	c := client(t, s.Addr())
	for i := 0; i < 20; i++ {
		_, _ = c.DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "missing"})
		_, _ = c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl-" + string(rune('a'+i)),
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}})
	}
	s.flushAuditOnce(ctx) // the batched reads
	want := map[string]bool{}
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	ev, err := aclc.LookupEvents(ctx, &pb.LookupEventsRequest{MaxResults: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.GetEvents() {
		want[e.GetEventId()] = true
	}
	if len(want) < 40 {
		t.Fatalf("only %d records stored for 40 calls", len(want))
	}
	var last uint64
	for _, e := range ev.GetEvents() {
		last = max(last, e.GetSequence())
	}
	eventually(t, 10*time.Second, "records exported", func() bool {
		b, _ := os.ReadFile(filepath.Join(s.cfg.AuditExportDir, auditCursorFile))
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n >= last
	})
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(out, "audit-*.jsonl"))
	if len(files) < 2 {
		t.Fatalf("want several rotated files uploaded, got %v", files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct {
				EventID   string `json:"eventID"`
				EventName string `json:"eventName"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			seen[rec.EventID]++
		}
		fh.Close()
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("record %s exported %d times", id, seen[id])
		}
	}
}
