package state

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestAuditPruneByAgeAndCount(t *testing.T) {
	s := New()
	base := time.Unix(1_000_000, 0)
	for i := 0; i < 10; i++ {
		ev := &pb.AuditEvent{EventId: string(rune('a' + i)), EventTime: timestamppb.New(base.Add(time.Duration(i) * time.Hour))}
		if err := s.AppendAuditEvents(uint64(i+1), &pb.AppendAuditEventsCommand{Events: []*pb.AuditEvent{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneAuditEvents(&pb.PruneAuditEventsCommand{Before: timestamppb.New(base.Add(3 * time.Hour))})
	if err != nil || n != 3 {
		t.Fatalf("age prune dropped %d, %v; want 3", n, err)
	}
	n, err = s.PruneAuditEvents(&pb.PruneAuditEventsCommand{KeepAtMost: 4})
	if err != nil || n != 3 {
		t.Fatalf("count prune dropped %d, %v; want 3", n, err)
	}
	var ids []string
	_ = s.AuditEvents(0, func(ev *pb.AuditEvent) bool { ids = append(ids, ev.GetEventId()); return true })
	if len(ids) != 4 || ids[0] != "j" || ids[3] != "g" {
		t.Fatalf("kept %v, want the newest four, newest first", ids)
	}
	// Paging: below sequence of "h" (index 8) starts at "g".
	var page []string
	_ = s.AuditEvents(8<<16, func(ev *pb.AuditEvent) bool { page = append(page, ev.GetEventId()); return true })
	if len(page) != 1 || page[0] != "g" {
		t.Fatalf("page below h: %v", page)
	}
}

func TestACLRecordsSurviveASnapshot(t *testing.T) {
	s := New()
	if err := s.SetMeta(&pb.ClusterMeta{ClusterId: "c"}); err != nil {
		t.Fatal(err)
	}
	p := &pb.Principal{Arn: "arn:aws:iam::111111111111:user/a", AccountId: "111111111111", Name: "a", Type: pb.PrincipalType_PRINCIPAL_TYPE_USER}
	pol := &pb.Policy{Arn: "arn:aws:iam::111111111111:policy/p", AccountId: "111111111111", Name: "p", Document: "{}"}
	tok := &pb.TokenRecord{Token: &pb.Token{AccessorId: "t1", PrincipalArn: p.Arn}, SecretSha256: []byte{1, 2, 3}}
	for _, cmd := range []*pb.ACLCommand{
		{Change: &pb.ACLCommand_Bootstrap_{Bootstrap: &pb.ACLCommand_Bootstrap{Principal: p, Policy: pol, Token: tok}}},
		{Change: &pb.ACLCommand_CreateAccessKey{CreateAccessKey: &pb.AccessKeyRecord{Key: &pb.AccessKey{AccessKeyId: "AKIA1", PrincipalArn: p.Arn}, SecretAccessKey: "s"}}},
		{Change: &pb.ACLCommand_PutSecret{PutSecret: &pb.SecretRecord{Info: &pb.SecretInfo{AccountId: "111111111111", Name: "hf"}, Value: []byte("v")}}},
	} {
		if _, err := s.ApplyACL(cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAuditEvents(9, &pb.AppendAuditEventsCommand{Events: []*pb.AuditEvent{{EventId: "e"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGossipKeyring(&pb.GossipKeyring{Primary: []byte("k"), Keys: [][]byte{[]byte("k")}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != s.Hash() || !r.ACLEnabled() || r.TokenBySecretHash([]byte{1, 2, 3}) == nil || r.Meta().GetGossipKeyring() == nil {
		t.Fatalf("restored state differs: %v vs %v", r.Counts(), s.Counts())
	}
	if c := r.Counts(); c[tablePrincipals] != 1 || c[tableAccessKeys] != 1 || c[tableSecrets] != 1 || c[tableAudit] != 1 || c[tablePolicies] != 1 {
		t.Fatalf("counts %v", c)
	}
}

func TestExpiredCredentialsAreFound(t *testing.T) {
	s := New()
	_ = s.SetMeta(&pb.ClusterMeta{})
	p := &pb.Principal{Arn: "arn:aws:iam::111111111111:user/a", AccountId: "111111111111", Type: pb.PrincipalType_PRINCIPAL_TYPE_USER}
	now := time.Unix(10_000, 0)
	if _, err := s.ApplyACL(&pb.ACLCommand{Change: &pb.ACLCommand_CreatePrincipal{CreatePrincipal: p}}); err != nil {
		t.Fatal(err)
	}
	for i, exp := range []*timestamppb.Timestamp{nil, timestamppb.New(now.Add(-time.Minute)), timestamppb.New(now.Add(time.Minute))} {
		tok := &pb.TokenRecord{Token: &pb.Token{AccessorId: fmt.Sprint("t", i), PrincipalArn: p.Arn, Expiration: exp}, SecretSha256: []byte{byte(i)}}
		key := &pb.AccessKeyRecord{Key: &pb.AccessKey{AccessKeyId: fmt.Sprint("K", i), PrincipalArn: p.Arn, Expiration: exp}}
		for _, c := range []*pb.ACLCommand{{Change: &pb.ACLCommand_CreateToken{CreateToken: tok}}, {Change: &pb.ACLCommand_CreateAccessKey{CreateAccessKey: key}}} {
			if _, err := s.ApplyACL(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := s.ExpiredCredentials(now)
	if len(got) != 2 || got[0].GetKey() != "t1" || got[1].GetKey() != "K1" {
		t.Fatalf("expired: %v", got)
	}
}

// A batch applied twice (a retry after an unknown outcome) keeps one copy of
// each record, also across a snapshot.
func TestAuditEventsAreStoredOnce(t *testing.T) {
	s := New()
	batch := &pb.AppendAuditEventsCommand{Events: []*pb.AuditEvent{{EventId: "e1", EventName: "A"}, {EventId: "e2", EventName: "B"}}}
	if err := s.AppendAuditEvents(10, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAuditEvents(11, batch); err != nil {
		t.Fatal(err)
	}
	count := func(st *Store) int {
		n := 0
		st.AuditEventsAfter(0, func(*pb.AuditEvent) bool { n++; return true })
		return n
	}
	if n := count(s); n != 2 {
		t.Fatalf("%d records after the batch was applied twice, want 2", n)
	}
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AppendAuditEvents(12, batch); err != nil {
		t.Fatal(err)
	}
	if n := count(r); n != 2 {
		t.Fatalf("%d records after a restore and a third apply, want 2", n)
	}
}
