package state

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Sentinel errors of the store. The API boundary maps them to gRPC codes.
var (
	// ErrNotFound: the named resource does not exist (ResourceNotFound).
	ErrNotFound = errors.New("ResourceNotFound")
	// ErrAlreadyExists: the name is taken in the account (ResourceInUse).
	ErrAlreadyExists = errors.New("ResourceInUse")
	// ErrConflict: the resource's state forbids the operation (ResourceInUse,
	// FAILED_PRECONDITION).
	ErrConflict = errors.New("ResourceInUse")
	// ErrLimitExceeded: an account quota is reached (ResourceLimitExceeded).
	ErrLimitExceeded = errors.New("ResourceLimitExceeded")
	// ErrTokenReused: a client token was reused with a different request
	// (ValidationException on client_token).
	ErrTokenReused = errors.New("client token reused with a different request")
)

// Store is the state database. Reads are safe from any goroutine; writes come
// only from the FSM.
type Store struct {
	db *memdb.MemDB
	// abandonCh is closed when a snapshot restore replaces this store, so
	// watchers re-arm on the new one.
	abandonCh chan struct{}
}

// New returns an empty store.
func New() *Store {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state schema: %v", err)) // a programming error
	}
	return &Store{db: db, abandonCh: make(chan struct{})}
}

// AbandonCh is closed when this store has been replaced by a restore.
func (s *Store) AbandonCh() <-chan struct{} { return s.abandonCh }

// Abandon marks the store as replaced.
func (s *Store) Abandon() { close(s.abandonCh) }

// WorkloadConfig returns a workload config.
func (s *Store) WorkloadConfig(account, name string) (*pb.WorkloadConfigRecord, error) {
	raw, err := s.db.Txn(false).First(tableWorkloadConfigs, "id", account+"/"+name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: ai-workload-config %q does not exist", ErrNotFound, name)
	}
	return raw.(*WorkloadConfig).Record, nil
}

// WorkloadConfigs returns every workload config of an account.
func (s *Store) WorkloadConfigs(account string) ([]*pb.WorkloadConfigRecord, error) {
	it, err := s.db.Txn(false).Get(tableWorkloadConfigs, "account", account)
	if err != nil {
		return nil, err
	}
	var out []*pb.WorkloadConfigRecord
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*WorkloadConfig).Record)
	}
	return out, nil
}

// Job returns one job of a kind.
func (s *Store) Job(kind, account, name string) (*Job, error) {
	raw, err := s.db.Txn(false).First(tableJobs, "id", jobKey(kind, account, name))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: %s %q does not exist", ErrNotFound, kind, name)
	}
	return raw.(*Job), nil
}

// Jobs returns every job of a kind in an account.
func (s *Store) Jobs(kind, account string) ([]*Job, error) {
	return s.jobsBy("account", kind+"/"+account, nil)
}

// JobsInStatus returns every job of a kind in a status, across accounts, and
// adds a channel to ws that fires when that set may have changed.
func (s *Store) JobsInStatus(ws memdb.WatchSet, kind, status string) ([]*Job, error) {
	return s.jobsBy("status", kind+"/"+status, ws)
}

func (s *Store) jobsBy(index, value string, ws memdb.WatchSet) ([]*Job, error) {
	it, err := s.db.Txn(false).Get(tableJobs, index, value)
	if err != nil {
		return nil, err
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	var out []*Job
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Job))
	}
	return out, nil
}

// Servers returns the registered coordinator servers, sorted by ID.
func (s *Store) Servers() ([]*pb.ServerIdentity, error) {
	it, err := s.db.Txn(false).Get(tableServers, "id")
	if err != nil {
		return nil, err
	}
	var out []*pb.ServerIdentity
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Server).Record)
	}
	return out, nil
}

// Server returns one registered server, or nil.
func (s *Store) Server(id string) *pb.ServerIdentity {
	raw, err := s.db.Txn(false).First(tableServers, "id", id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*Server).Record
}

// Meta returns the cluster meta, or nil before the first leader set it.
func (s *Store) Meta() *pb.ClusterMeta {
	raw, err := s.db.Txn(false).First(tableMeta, "id", metaID)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*Meta).Record
}

// ClientToken returns an idempotency record, or nil.
func (s *Store) ClientToken(account, operation, token string) *pb.ClientTokenRecord {
	raw, err := s.db.Txn(false).First(tableClientTokens, "id", account+"/"+operation+"/"+token)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*ClientToken).Record
}

// Counts returns the number of records per table.
func (s *Store) Counts() map[string]uint64 {
	txn := s.db.Txn(false)
	out := map[string]uint64{}
	for _, t := range []string{tableWorkloadConfigs, tableEndpoints, tableJobs, tableClientTokens, tableServers, tableMeta, tableAgents,
		tablePrincipals, tableTokens, tableAccessKeys, tablePolicies, tableSecrets, tableAudit} {
		it, err := txn.Get(t, "id")
		if err != nil {
			continue
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out[t]++
		}
	}
	return out
}

// clone deep-copies a record before a change.
func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }

// Agents returns every agent, sorted by ID, and adds a channel to ws (when
// given) that fires when the registry changes.
func (s *Store) Agents(ws memdb.WatchSet) ([]*pb.Agent, error) {
	it, err := s.db.Txn(false).Get(tableAgents, "id")
	if err != nil {
		return nil, err
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	var out []*pb.Agent
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Agent).Record)
	}
	return out, nil
}

// Agent returns one agent.
func (s *Store) Agent(id string) (*pb.Agent, error) {
	raw, err := s.db.Txn(false).First(tableAgents, "id", id)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: agent %q is not known to the fleet", ErrNotFound, id)
	}
	return raw.(*Agent).Record, nil
}
