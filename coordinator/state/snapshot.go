package state

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Snapshot stream format: the header line, then records, each one byte of
// record type, a uvarint length and the deterministic protobuf encoding. The
// stream ends with recordEnd. Unknown record types are an error: a snapshot
// from a newer version must not be half-restored.
const snapshotHeader = "perfleet-state v1\n"

const (
	recordEnd            byte = 0
	recordWorkloadConfig byte = 1
	recordBenchmarkJob   byte = 2
	recordRecommendation byte = 3
	recordClientToken    byte = 4
	recordServer         byte = 5
	recordMeta           byte = 6
	recordAgent          byte = 7
)

// ErrBadSnapshot is returned when a snapshot stream cannot be decoded.
var ErrBadSnapshot = errors.New("bad state snapshot")

// Snapshot is a point-in-time view of the store. Taking one is cheap (a
// memdb read transaction); the I/O happens in Persist.
type Snapshot struct {
	txn *memdb.Txn
}

// Snapshot returns a point-in-time view.
func (s *Store) Snapshot() *Snapshot { return &Snapshot{txn: s.db.Txn(false)} }

var marshal = proto.MarshalOptions{Deterministic: true}

// Persist writes every record to w in the canonical order (each table by its
// id index).
func (sn *Snapshot) Persist(w io.Writer) error { return sn.persist(w, "") }

func (sn *Snapshot) persist(w io.Writer, skip string) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(snapshotHeader); err != nil {
		return err
	}
	var lenBuf [binary.MaxVarintLen64]byte
	write := func(kind byte, m proto.Message) error {
		b, err := marshal.Marshal(m)
		if err != nil {
			return err
		}
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if err := bw.WriteByte(kind); err != nil {
			return err
		}
		if _, err := bw.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	tables := []struct {
		name   string
		record func(any) (byte, proto.Message)
	}{
		{tableMeta, func(r any) (byte, proto.Message) { return recordMeta, r.(*Meta).Record }},
		{tableServers, func(r any) (byte, proto.Message) { return recordServer, r.(*Server).Record }},
		{tableWorkloadConfigs, func(r any) (byte, proto.Message) { return recordWorkloadConfig, r.(*WorkloadConfig).Record }},
		{tableEndpoints, func(r any) (byte, proto.Message) { return recordEndpoint, r.(*Endpoint).Record }},
		{tableJobs, func(r any) (byte, proto.Message) {
			if j := r.(*Job); j.Benchmark != nil {
				return recordBenchmarkJob, j.Benchmark
			} else {
				return recordRecommendation, j.Recommend
			}
		}},
		{tableClientTokens, func(r any) (byte, proto.Message) { return recordClientToken, r.(*ClientToken).Record }},
		{tableAgents, func(r any) (byte, proto.Message) { return recordAgent, r.(*Agent).Record }},
		{tablePrincipals, func(r any) (byte, proto.Message) { return recordPrincipal, r.(*PrincipalRow).Record }},
		{tableTokens, func(r any) (byte, proto.Message) { return recordToken, r.(*TokenRow).Record }},
		{tableAccessKeys, func(r any) (byte, proto.Message) { return recordAccessKey, r.(*AccessKeyRow).Record }},
		{tablePolicies, func(r any) (byte, proto.Message) { return recordPolicy, r.(*PolicyRow).Record }},
		{tableSecrets, func(r any) (byte, proto.Message) { return recordSecret, r.(*SecretRow).Record }},
		{tableAudit, func(r any) (byte, proto.Message) { return recordAuditEvent, r.(*AuditRow).Record }},
	}
	for _, t := range tables {
		if t.name == skip {
			continue
		}
		it, err := sn.txn.Get(t.name, "id")
		if err != nil {
			return err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if err := write(t.record(raw)); err != nil {
				return err
			}
		}
	}
	if err := bw.WriteByte(recordEnd); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore builds a fresh store from a snapshot stream.
func Restore(r io.Reader) (*Store, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head := make([]byte, len(snapshotHeader))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != snapshotHeader {
		return nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	s := New()
	txn := s.db.Txn(true)
	defer txn.Abort()
	buf := make([]byte, 0, 4096)
	for n := 0; ; n++ {
		kind, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadSnapshot, n, err)
		}
		if kind == recordEnd {
			break
		}
		size, err := binary.ReadUvarint(br)
		if err != nil || size > 64<<20 {
			return nil, fmt.Errorf("%w: record %d: bad length", ErrBadSnapshot, n)
		}
		buf = buf[:0]
		buf = append(buf, make([]byte, size)...)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadSnapshot, n, err)
		}
		if err := insertRecord(txn, kind, buf); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadSnapshot, n, err)
		}
	}
	txn.Commit()
	return s, nil
}

func insertRecord(txn *memdb.Txn, kind byte, b []byte) error {
	switch kind {
	case recordWorkloadConfig:
		m := &pb.WorkloadConfigRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableWorkloadConfigs, newWorkloadConfig(m))
	case recordBenchmarkJob:
		m := &pb.BenchmarkJobRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableJobs, newBenchmarkJob(m))
	case recordRecommendation:
		m := &pb.RecommendationJobRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableJobs, newRecommendationJob(m))
	case recordClientToken:
		m := &pb.ClientTokenRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableClientTokens, &ClientToken{Key: m.GetAccountId() + "/" + m.GetOperation() + "/" + m.GetToken(), Record: m})
	case recordServer:
		m := &pb.ServerIdentity{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableServers, &Server{ID: m.GetNodeId(), Record: m})
	case recordAgent:
		m := &pb.Agent{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableAgents, &Agent{ID: m.GetAgentId(), Status: m.GetStatus(), Record: m})
	case recordEndpoint:
		m := &pb.EndpointRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableEndpoints, newEndpoint(m))
	case recordMeta:
		m := &pb.ClusterMeta{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableMeta, &Meta{ID: metaID, Record: m})
	}
	return insertACLRecord(txn, kind, b)
}

func insertACLRecord(txn *memdb.Txn, kind byte, b []byte) error {
	switch kind {
	case recordPrincipal:
		m := &pb.Principal{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tablePrincipals, &PrincipalRow{ARN: m.GetArn(), Account: m.GetAccountId(), Record: m})
	case recordToken:
		m := &pb.TokenRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableTokens, newTokenRow(m))
	case recordAccessKey:
		m := &pb.AccessKeyRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableAccessKeys, newAccessKeyRow(m))
	case recordPolicy:
		m := &pb.Policy{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tablePolicies, &PolicyRow{ARN: m.GetArn(), Account: m.GetAccountId(), Record: m})
	case recordSecret:
		m := &pb.SecretRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableSecrets, newSecretRow(m))
	case recordAuditEvent:
		m := &pb.AuditEvent{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		return txn.Insert(tableAudit, newAuditRow(m))
	}
	return fmt.Errorf("unknown record type %d", kind)
}

// Hash returns the hex SHA-256 of the store's canonical snapshot encoding:
// two stores hash equal exactly when they hold the same records.
func (s *Store) Hash() string { return s.hash("") }

// ResourceHash is Hash without the audit log: it changes only when a
// resource does, not when a call (even a refused one) is audited.
func (s *Store) ResourceHash() string { return s.hash(tableAudit) }

func (s *Store) hash(skip string) string {
	h := sha256.New()
	if err := s.Snapshot().persist(h, skip); err != nil {
		return "error: " + err.Error()
	}
	return hex.EncodeToString(h.Sum(nil))
}
