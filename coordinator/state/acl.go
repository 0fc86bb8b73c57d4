package state

import (
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// ACL tables: principals (users and roles), bearer tokens, SigV4 access keys,
// managed policies, stored secrets and the audit log.
const (
	tablePrincipals = "principals"
	tableTokens     = "tokens"
	tableAccessKeys = "access_keys"
	tablePolicies   = "policies"
	tableSecrets    = "secrets"
	tableAudit      = "audit_events"
)

// Snapshot record types of the ACL tables.
const (
	recordPrincipal  byte = 8
	recordToken      byte = 9
	recordAccessKey  byte = 10
	recordPolicy     byte = 11
	recordSecret     byte = 12
	recordAuditEvent byte = 13
)

// Delete kinds of ACLCommand.Delete.
const (
	ACLKindPrincipal = "principal"
	ACLKindToken     = "token"
	ACLKindAccessKey = "access-key"
	ACLKindPolicy    = "policy"
	ACLKindSecret    = "secret"
)

// PrincipalRow is a row of the principals table.
type PrincipalRow struct {
	ARN     string
	Account string
	Record  *pb.Principal
}

// TokenRow is a row of the tokens table, found by accessor ID or by the hex
// SHA-256 of its secret.
type TokenRow struct {
	ID        string
	Hash      string
	Principal string
	Account   string
	Record    *pb.TokenRecord
}

// AccessKeyRow is a row of the access keys table.
type AccessKeyRow struct {
	ID        string
	Principal string
	Account   string
	Record    *pb.AccessKeyRecord
}

// PolicyRow is a row of the policies table.
type PolicyRow struct {
	ARN     string
	Account string
	Record  *pb.Policy
}

// SecretRow is a row of the secrets table, keyed account/name.
type SecretRow struct {
	Key     string
	Account string
	Record  *pb.SecretRecord
}

// AuditRow is a row of the audit table, ordered by sequence.
type AuditRow struct {
	Seq     uint64
	EventID string
	Record  *pb.AuditEvent
}

func newAuditRow(ev *pb.AuditEvent) *AuditRow {
	return &AuditRow{Seq: ev.GetSequence(), EventID: ev.GetEventId(), Record: ev}
}

func aclTables() map[string]*memdb.TableSchema {
	byAccount := func(field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: "account", Indexer: &memdb.StringFieldIndex{Field: field}}
	}
	return map[string]*memdb.TableSchema{
		tablePrincipals: {Name: tablePrincipals, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ARN"), "account": byAccount("Account"),
		}},
		tableTokens: {Name: tableTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":        stringIndex("id", "ID"),
			"hash":      {Name: "hash", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Hash"}},
			"principal": {Name: "principal", Indexer: &memdb.StringFieldIndex{Field: "Principal"}},
			"account":   byAccount("Account"),
		}},
		tableAccessKeys: {Name: tableAccessKeys, Indexes: map[string]*memdb.IndexSchema{
			"id":        stringIndex("id", "ID"),
			"principal": {Name: "principal", Indexer: &memdb.StringFieldIndex{Field: "Principal"}},
			"account":   byAccount("Account"),
		}},
		tablePolicies: {Name: tablePolicies, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ARN"), "account": byAccount("Account"),
		}},
		tableSecrets: {Name: tableSecrets, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Key"), "account": byAccount("Account"),
		}},
		tableAudit: {Name: tableAudit, Indexes: map[string]*memdb.IndexSchema{
			"id":    {Name: "id", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
			"event": {Name: "event", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "EventID"}},
		}},
	}
}

// AccountOfARN returns the account component of an ARN, or "".
func AccountOfARN(a string) string {
	parts := strings.SplitN(a, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

func newTokenRow(r *pb.TokenRecord) *TokenRow {
	p := r.GetToken().GetPrincipalArn()
	return &TokenRow{ID: r.GetToken().GetAccessorId(), Hash: hex.EncodeToString(r.GetSecretSha256()), Principal: p, Account: AccountOfARN(p), Record: r}
}

func newAccessKeyRow(r *pb.AccessKeyRecord) *AccessKeyRow {
	p := r.GetKey().GetPrincipalArn()
	return &AccessKeyRow{ID: r.GetKey().GetAccessKeyId(), Principal: p, Account: AccountOfARN(p), Record: r}
}

func newSecretRow(r *pb.SecretRecord) *SecretRow {
	i := r.GetInfo()
	return &SecretRow{Key: i.GetAccountId() + "/" + i.GetName(), Account: i.GetAccountId(), Record: r}
}

// ACLEnabled reports whether Bootstrap has turned ACLs on.
func (s *Store) ACLEnabled() bool { return s.Meta().GetAclEnabled() }

// Principal returns a principal by ARN.
func (s *Store) Principal(arn string) (*pb.Principal, error) {
	raw, err := s.db.Txn(false).First(tablePrincipals, "id", arn)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: principal %s does not exist", ErrNotFound, arn)
	}
	return raw.(*PrincipalRow).Record, nil
}

// Principals lists an account's principals sorted by ARN.
func (s *Store) Principals(account string) ([]*pb.Principal, error) {
	return listBy(s, tablePrincipals, account, func(r any) *pb.Principal { return r.(*PrincipalRow).Record }, (*pb.Principal).GetArn)
}

// TokenBySecretHash finds a token by the SHA-256 of its secret.
func (s *Store) TokenBySecretHash(sum []byte) *pb.TokenRecord {
	raw, err := s.db.Txn(false).First(tableTokens, "hash", hex.EncodeToString(sum))
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*TokenRow).Record
}

// Tokens lists tokens of one principal, or of an account when principal is
// empty.
func (s *Store) Tokens(account, principal string) ([]*pb.Token, error) {
	rows, err := listBy(s, tableTokens, account, func(r any) *TokenRow { return r.(*TokenRow) }, func(r *TokenRow) string { return r.ID })
	if err != nil {
		return nil, err
	}
	var out []*pb.Token
	for _, r := range rows {
		if principal == "" || r.Principal == principal {
			out = append(out, r.Record.GetToken())
		}
	}
	return out, nil
}

// Token returns a token by accessor ID.
func (s *Store) Token(accessor string) (*pb.TokenRecord, error) {
	raw, err := s.db.Txn(false).First(tableTokens, "id", accessor)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: token %s does not exist", ErrNotFound, accessor)
	}
	return raw.(*TokenRow).Record, nil
}

// AccessKey returns an access key by ID.
func (s *Store) AccessKey(id string) (*pb.AccessKeyRecord, error) {
	raw, err := s.db.Txn(false).First(tableAccessKeys, "id", id)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: access key %s does not exist", ErrNotFound, id)
	}
	return raw.(*AccessKeyRow).Record, nil
}

// AccessKeys lists access keys of one principal, or of an account when
// principal is empty.
func (s *Store) AccessKeys(account, principal string) ([]*pb.AccessKey, error) {
	rows, err := listBy(s, tableAccessKeys, account, func(r any) *AccessKeyRow { return r.(*AccessKeyRow) }, func(r *AccessKeyRow) string { return r.ID })
	if err != nil {
		return nil, err
	}
	var out []*pb.AccessKey
	for _, r := range rows {
		if principal == "" || r.Principal == principal {
			out = append(out, r.Record.GetKey())
		}
	}
	return out, nil
}

// Policy returns a policy by ARN.
func (s *Store) Policy(arn string) (*pb.Policy, error) {
	raw, err := s.db.Txn(false).First(tablePolicies, "id", arn)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: policy %s does not exist", ErrNotFound, arn)
	}
	return raw.(*PolicyRow).Record, nil
}

// Policies lists an account's policies sorted by ARN.
func (s *Store) Policies(account string) ([]*pb.Policy, error) {
	return listBy(s, tablePolicies, account, func(r any) *pb.Policy { return r.(*PolicyRow).Record }, (*pb.Policy).GetArn)
}

// Secret returns a stored secret, value included: only the job runner may
// call this, to hand the value to the agents of a shard.
func (s *Store) Secret(account, name string) (*pb.SecretRecord, error) {
	raw, err := s.db.Txn(false).First(tableSecrets, "id", account+"/"+name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: secret perfleet:secret/%s does not exist", ErrNotFound, name)
	}
	return raw.(*SecretRow).Record, nil
}

// Secrets lists an account's secrets without values, sorted by name.
func (s *Store) Secrets(account string) ([]*pb.SecretInfo, error) {
	return listBy(s, tableSecrets, account, func(r any) *pb.SecretInfo { return r.(*SecretRow).Record.GetInfo() }, (*pb.SecretInfo).GetName)
}

func listBy[T any](s *Store, table, account string, get func(any) T, key func(T) string) ([]T, error) {
	it, err := s.db.Txn(false).Get(table, "account", account)
	if err != nil {
		return nil, err
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, get(raw))
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, nil
}

// AuditEvents calls visit for stored audit records from the newest to the
// oldest, starting below sequence before (0: from the newest), until visit
// returns false.
func (s *Store) AuditEvents(before uint64, visit func(*pb.AuditEvent) bool) error {
	var it memdb.ResultIterator
	var err error
	txn := s.db.Txn(false)
	if before == 0 {
		it, err = txn.GetReverse(tableAudit, "id")
	} else {
		it, err = txn.ReverseLowerBound(tableAudit, "id", before-1)
	}
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !visit(raw.(*AuditRow).Record) {
			return nil
		}
	}
	return nil
}

// AuditEventsAfter calls visit for records with a sequence above after, the
// oldest first, until visit returns false (the exporter's cursor).
func (s *Store) AuditEventsAfter(after uint64, visit func(*pb.AuditEvent) bool) error {
	it, err := s.db.Txn(false).LowerBound(tableAudit, "id", after+1)
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !visit(raw.(*AuditRow).Record) {
			return nil
		}
	}
	return nil
}

// AuditWatch returns a channel closed when the audit table changes.
func (s *Store) AuditWatch() <-chan struct{} {
	ch, _, _ := s.db.Txn(false).FirstWatch(tableAudit, "id")
	return ch
}

// ApplyACL applies an ACL change. It returns the stored record of a create.
func (s *Store) ApplyACL(cmd *pb.ACLCommand) (any, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	var out any
	var err error
	switch c := cmd.GetChange().(type) {
	case *pb.ACLCommand_Bootstrap_:
		out, err = s.bootstrap(txn, c.Bootstrap)
	case *pb.ACLCommand_CreatePrincipal:
		err = insertNew(txn, tablePrincipals, &PrincipalRow{ARN: c.CreatePrincipal.GetArn(), Account: c.CreatePrincipal.GetAccountId(), Record: c.CreatePrincipal}, "principal "+c.CreatePrincipal.GetArn())
		out = c.CreatePrincipal
	case *pb.ACLCommand_CreateToken:
		err = s.insertCredential(txn, tableTokens, c.CreateToken.GetToken().GetPrincipalArn(), newTokenRow(c.CreateToken))
	case *pb.ACLCommand_CreateAccessKey:
		err = s.insertCredential(txn, tableAccessKeys, c.CreateAccessKey.GetKey().GetPrincipalArn(), newAccessKeyRow(c.CreateAccessKey))
	case *pb.ACLCommand_PutPolicy:
		out, err = putPolicy(txn, c.PutPolicy)
	case *pb.ACLCommand_Attachment_:
		out, err = attach(txn, c.Attachment)
	case *pb.ACLCommand_PutSecret:
		out, err = putSecret(txn, c.PutSecret)
	case *pb.ACLCommand_Delete_:
		err = aclDelete(txn, c.Delete)
	default:
		err = fmt.Errorf("empty ACL command")
	}
	if err != nil {
		return nil, err
	}
	txn.Commit()
	return out, nil
}

func insertNew(txn *memdb.Txn, table string, row any, what string) error {
	id, err := memdbID(table, row)
	if err != nil {
		return err
	}
	raw, err := txn.First(table, "id", id)
	if err != nil {
		return err
	}
	if raw != nil {
		return fmt.Errorf("%w: %s already exists", ErrAlreadyExists, what)
	}
	return txn.Insert(table, row)
}

func memdbID(table string, row any) (any, error) {
	switch r := row.(type) {
	case *PrincipalRow:
		return r.ARN, nil
	case *TokenRow:
		return r.ID, nil
	case *AccessKeyRow:
		return r.ID, nil
	case *PolicyRow:
		return r.ARN, nil
	case *SecretRow:
		return r.Key, nil
	}
	return nil, fmt.Errorf("table %s: unexpected row %T", table, row)
}

func (s *Store) bootstrap(txn *memdb.Txn, b *pb.ACLCommand_Bootstrap) (any, error) {
	raw, err := txn.First(tableMeta, "id", metaID)
	if err != nil {
		return nil, err
	}
	meta := &pb.ClusterMeta{}
	if raw != nil {
		meta = proto.Clone(raw.(*Meta).Record).(*pb.ClusterMeta)
	}
	if meta.GetAclEnabled() {
		return nil, fmt.Errorf("%w: ACLs are already bootstrapped; ask an administrator for a token", ErrConflict)
	}
	meta.AclEnabled = true
	meta.AdminAccount = b.GetPrincipal().GetAccountId()
	if err := txn.Insert(tableMeta, &Meta{ID: metaID, Record: meta}); err != nil {
		return nil, err
	}
	p := b.GetPrincipal()
	if err := txn.Insert(tablePolicies, &PolicyRow{ARN: b.GetPolicy().GetArn(), Account: b.GetPolicy().GetAccountId(), Record: b.GetPolicy()}); err != nil {
		return nil, err
	}
	if err := txn.Insert(tablePrincipals, &PrincipalRow{ARN: p.GetArn(), Account: p.GetAccountId(), Record: p}); err != nil {
		return nil, err
	}
	if err := txn.Insert(tableTokens, newTokenRow(b.GetToken())); err != nil {
		return nil, err
	}
	return p, nil
}

// insertCredential adds a token or access key to an existing user.
func (s *Store) insertCredential(txn *memdb.Txn, table, principal string, row any) error {
	raw, err := txn.First(tablePrincipals, "id", principal)
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: principal %s does not exist", ErrNotFound, principal)
	}
	if raw.(*PrincipalRow).Record.GetType() != pb.PrincipalType_PRINCIPAL_TYPE_USER {
		return fmt.Errorf("%w: %s is a role; roles have no credentials of their own, jobs act as them", ErrConflict, principal)
	}
	return insertNew(txn, table, row, "credential")
}

func putPolicy(txn *memdb.Txn, p *pb.Policy) (*pb.Policy, error) {
	raw, err := txn.First(tablePolicies, "id", p.GetArn())
	if err != nil {
		return nil, err
	}
	p = proto.Clone(p).(*pb.Policy)
	p.Version = 1
	if raw != nil {
		old := raw.(*PolicyRow).Record
		p.Version = old.GetVersion() + 1
		p.Created = old.GetCreated()
	}
	return p, txn.Insert(tablePolicies, &PolicyRow{ARN: p.GetArn(), Account: p.GetAccountId(), Record: p})
}

func attach(txn *memdb.Txn, a *pb.ACLCommand_Attachment) (*pb.Principal, error) {
	raw, err := txn.First(tablePrincipals, "id", a.GetPrincipalArn())
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: principal %s does not exist", ErrNotFound, a.GetPrincipalArn())
	}
	pol, err := txn.First(tablePolicies, "id", a.GetPolicyArn())
	if err != nil {
		return nil, err
	}
	if pol == nil && !a.GetDetach() {
		return nil, fmt.Errorf("%w: policy %s does not exist", ErrNotFound, a.GetPolicyArn())
	}
	p := proto.Clone(raw.(*PrincipalRow).Record).(*pb.Principal)
	has := slices.Contains(p.PolicyArns, a.GetPolicyArn())
	switch {
	case a.GetDetach() && !has:
		return nil, fmt.Errorf("%w: policy %s is not attached to %s", ErrNotFound, a.GetPolicyArn(), p.GetArn())
	case a.GetDetach():
		p.PolicyArns = slices.DeleteFunc(p.PolicyArns, func(s string) bool { return s == a.GetPolicyArn() })
	case has:
		return p, nil
	default:
		if len(p.PolicyArns) >= 20 {
			return nil, fmt.Errorf("%w: %s already has 20 policies attached", ErrLimitExceeded, p.GetArn())
		}
		p.PolicyArns = append(p.PolicyArns, a.GetPolicyArn())
	}
	return p, txn.Insert(tablePrincipals, &PrincipalRow{ARN: p.GetArn(), Account: p.GetAccountId(), Record: p})
}

func putSecret(txn *memdb.Txn, r *pb.SecretRecord) (*pb.SecretInfo, error) {
	if r.GetInfo() == nil {
		// The endpoint always sets it; a command without it is malformed,
		// and applying it must fail, not crash every node replaying the log.
		return nil, fmt.Errorf("malformed secret command: the record has no info")
	}
	row := newSecretRow(proto.Clone(r).(*pb.SecretRecord))
	raw, err := txn.First(tableSecrets, "id", row.Key)
	if err != nil {
		return nil, err
	}
	row.Record.Info.Version = 1
	if raw != nil {
		row.Record.Info.Version = raw.(*SecretRow).Record.GetInfo().GetVersion() + 1
	}
	return row.Record.GetInfo(), txn.Insert(tableSecrets, row)
}

func aclDelete(txn *memdb.Txn, d *pb.ACLCommand_Delete) error {
	tables := map[string]string{
		ACLKindPrincipal: tablePrincipals, ACLKindToken: tableTokens, ACLKindAccessKey: tableAccessKeys,
		ACLKindPolicy: tablePolicies, ACLKindSecret: tableSecrets,
	}
	table, ok := tables[d.GetKind()]
	if !ok {
		return fmt.Errorf("unknown ACL kind %q", d.GetKind())
	}
	raw, err := txn.First(table, "id", d.GetKey())
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: %s %s does not exist", ErrNotFound, d.GetKind(), d.GetKey())
	}
	switch d.GetKind() {
	case ACLKindPolicy:
		it, err := txn.Get(tablePrincipals, "account", raw.(*PolicyRow).Account)
		if err != nil {
			return err
		}
		for r := it.Next(); r != nil; r = it.Next() {
			if p := r.(*PrincipalRow).Record; slices.Contains(p.GetPolicyArns(), d.GetKey()) {
				return fmt.Errorf("%w: policy %s is attached to %s; detach it first", ErrConflict, d.GetKey(), p.GetArn())
			}
		}
	case ACLKindPrincipal:
		// A deleted user's credentials die with it.
		for _, t := range []string{tableTokens, tableAccessKeys} {
			if _, err := txn.DeleteAll(t, "principal", d.GetKey()); err != nil {
				return err
			}
		}
	}
	return txn.Delete(table, raw)
}

// AppendAuditEvents stores audit records, numbering them from index<<16 so
// sequences grow in commit order and stay unique within a batch.
func (s *Store) AppendAuditEvents(index uint64, cmd *pb.AppendAuditEventsCommand) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	for i, ev := range cmd.GetEvents() {
		// A batch whose Raft write had an unknown outcome (leadership lost
		// mid-write) is sent again: keep one copy of each record.
		if id := ev.GetEventId(); id != "" {
			if dup, err := txn.First(tableAudit, "event", id); err != nil {
				return err
			} else if dup != nil {
				continue
			}
		}
		ev = proto.Clone(ev).(*pb.AuditEvent)
		ev.Sequence = index<<16 | uint64(i)
		if err := txn.Insert(tableAudit, newAuditRow(ev)); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// PruneAuditEvents drops records older than cmd.before and the oldest beyond
// cmd.keep_at_most, and returns how many it dropped.
func (s *Store) PruneAuditEvents(cmd *pb.PruneAuditEventsCommand) (int, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	total := 0
	if it, err := txn.Get(tableAudit, "id"); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			total++
		}
	}
	it, err := txn.Get(tableAudit, "id")
	if err != nil {
		return 0, err
	}
	var drop []any
	before := cmd.GetBefore()
	for raw := it.Next(); raw != nil; raw = it.Next() {
		ev := raw.(*AuditRow).Record
		old := before != nil && ev.GetEventTime().AsTime().Before(before.AsTime())
		over := cmd.GetKeepAtMost() > 0 && uint64(total-len(drop)) > cmd.GetKeepAtMost()
		if !old && !over {
			break
		}
		drop = append(drop, raw)
	}
	for _, raw := range drop {
		if err := txn.Delete(tableAudit, raw); err != nil {
			return 0, err
		}
	}
	txn.Commit()
	return len(drop), nil
}

// SetTags changes a resource's tags and returns them all, sorted by key.
func (s *Store) SetTags(cmd *pb.SetTagsCommand) ([]*pb.Tag, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	var tags []*pb.Tag
	var err error
	change := func(cur []*pb.Tag) []*pb.Tag {
		tags, err = mergeTags(cur, cmd.GetSet(), cmd.GetRemove())
		return tags
	}
	switch cmd.GetKind() {
	case KindWorkloadConfig:
		raw, e := txn.First(tableWorkloadConfigs, "id", cmd.GetAccountId()+"/"+cmd.GetName())
		if e != nil || raw == nil {
			return nil, notFoundOr(e, cmd)
		}
		r := proto.Clone(raw.(*WorkloadConfig).Record).(*pb.WorkloadConfigRecord)
		r.Config.Tags = change(r.GetConfig().GetTags())
		if err == nil {
			err = txn.Insert(tableWorkloadConfigs, newWorkloadConfig(r))
		}
	case KindBenchmark, KindRecommendation:
		raw, e := txn.First(tableJobs, "id", jobKey(cmd.GetKind(), cmd.GetAccountId(), cmd.GetName()))
		if e != nil || raw == nil {
			return nil, notFoundOr(e, cmd)
		}
		if j := raw.(*Job); j.Benchmark != nil {
			r := proto.Clone(j.Benchmark).(*pb.BenchmarkJobRecord)
			r.Job.Tags = change(r.GetJob().GetTags())
			if err == nil {
				err = txn.Insert(tableJobs, newBenchmarkJob(r))
			}
		} else {
			r := proto.Clone(j.Recommend).(*pb.RecommendationJobRecord)
			r.Job.Tags = change(r.GetJob().GetTags())
			if err == nil {
				err = txn.Insert(tableJobs, newRecommendationJob(r))
			}
		}
	default:
		return nil, fmt.Errorf("%w: resource type %q has no tags", ErrNotFound, cmd.GetKind())
	}
	if err != nil {
		return nil, err
	}
	txn.Commit()
	return tags, nil
}

func notFoundOr(err error, cmd *pb.SetTagsCommand) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s %q does not exist", ErrNotFound, cmd.GetKind(), cmd.GetName())
}

// MaxTags is the most tags one resource may carry, as in SageMaker.
const MaxTags = 50

func mergeTags(cur, set []*pb.Tag, remove []string) ([]*pb.Tag, error) {
	m := map[string]string{}
	for _, t := range cur {
		m[t.GetKey()] = t.GetValue()
	}
	for _, k := range remove {
		delete(m, k)
	}
	for _, t := range set {
		m[t.GetKey()] = t.GetValue()
	}
	if len(m) > MaxTags {
		return nil, fmt.Errorf("%w: a resource may have at most %d tags; this change leaves %d", ErrLimitExceeded, MaxTags, len(m))
	}
	out := make([]*pb.Tag, 0, len(m))
	for k, v := range m {
		out = append(out, &pb.Tag{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetKey() < out[j].GetKey() })
	return out, nil
}

// SetGossipKeyring replaces the cluster's gossip keyring.
func (s *Store) SetGossipKeyring(kr *pb.GossipKeyring) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	raw, err := txn.First(tableMeta, "id", metaID)
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: the cluster has no settings yet", ErrConflict)
	}
	meta := proto.Clone(raw.(*Meta).Record).(*pb.ClusterMeta)
	meta.GossipKeyring = kr
	if err := txn.Insert(tableMeta, &Meta{ID: metaID, Record: meta}); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ExpiredCredentials returns the tokens and access keys that expired
// before t, as ACL delete kinds and keys.
func (s *Store) ExpiredCredentials(t time.Time) []*pb.ACLCommand_Delete {
	txn := s.db.Txn(false)
	var out []*pb.ACLCommand_Delete
	if it, err := txn.Get(tableTokens, "id"); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			r := raw.(*TokenRow)
			if exp := r.Record.GetToken().GetExpiration(); exp != nil && exp.AsTime().Before(t) {
				out = append(out, &pb.ACLCommand_Delete{Kind: ACLKindToken, Key: r.ID})
			}
		}
	}
	if it, err := txn.Get(tableAccessKeys, "id"); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			r := raw.(*AccessKeyRow)
			if exp := r.Record.GetKey().GetExpiration(); exp != nil && exp.AsTime().Before(t) {
				out = append(out, &pb.ACLCommand_Delete{Kind: ACLKindAccessKey, Key: r.ID})
			}
		}
	}
	return out
}
