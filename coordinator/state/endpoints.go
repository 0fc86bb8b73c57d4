package state

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// KindEndpoint is the ARN resource type of registered endpoints
// (arn:…:sagemaker:<region>:<account>:endpoint/<name>).
const KindEndpoint = "endpoint"

const (
	tableEndpoints      = "endpoints"
	recordEndpoint byte = 14
)

// Endpoint is a row of the registered endpoint table.
type Endpoint struct {
	Key     string // account/name
	Account string
	Record  *pb.EndpointRecord
}

func endpointTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableEndpoints, Indexes: map[string]*memdb.IndexSchema{
		"id":      stringIndex("id", "Key"),
		"account": stringIndex("account", "Account"),
	}}
}

func newEndpoint(r *pb.EndpointRecord) *Endpoint {
	return &Endpoint{Key: r.GetAccountId() + "/" + r.GetEndpoint().GetEndpointName(), Account: r.GetAccountId(), Record: r}
}

// PutEndpoint registers an endpoint or replaces a registered one's settings,
// keeping its creation time.
func (s *Store) PutEndpoint(cmd *pb.PutEndpointCommand) (string, error) {
	rec := cmd.GetEndpoint()
	if rec.GetAccountId() == "" || rec.GetEndpoint().GetEndpointName() == "" {
		return "", fmt.Errorf("put endpoint command without account or name")
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	row := newEndpoint(rec)
	if raw, err := txn.First(tableEndpoints, "id", row.Key); err != nil {
		return "", err
	} else if raw != nil {
		old := raw.(*Endpoint).Record.GetEndpoint()
		changed := !slices.Equal(old.GetUrls(), rec.GetEndpoint().GetUrls()) || old.GetApiType() != rec.GetEndpoint().GetApiType() ||
			old.GetModelName() != rec.GetEndpoint().GetModelName()
		if changed {
			// A running job re-resolves its target after a leader change:
			// it must find what it started with.
			if job, err := endpointUser(txn, rec.GetAccountId(), old); err != nil {
				return "", err
			} else if job != nil {
				return "", fmt.Errorf("%w: endpoint %q is the target of ai-benchmark-job %q, which is %s; its URLs, API type and model cannot change until it ends",
					ErrConflict, old.GetEndpointName(), job.Name, job.Status)
			}
		}
		rec = clone(rec)
		rec.Endpoint.CreationTime = old.GetCreationTime()
		row = newEndpoint(rec)
	}
	if err := txn.Insert(tableEndpoints, row); err != nil {
		return "", err
	}
	txn.Commit()
	return rec.GetEndpoint().GetEndpointArn(), nil
}

// deleteEndpoint removes a registered endpoint unless a benchmark job that
// is not terminal targets it (by name or ARN).
func deleteEndpoint(txn *memdb.Txn, account, name string) (string, error) {
	raw, err := txn.First(tableEndpoints, "id", account+"/"+name)
	if err != nil {
		return "", err
	}
	if raw == nil {
		return "", fmt.Errorf("%w: endpoint %q is not registered", ErrNotFound, name)
	}
	ep := raw.(*Endpoint).Record.GetEndpoint()
	if job, err := endpointUser(txn, account, ep); err != nil {
		return "", err
	} else if job != nil {
		return "", fmt.Errorf("%w: endpoint %q is the target of ai-benchmark-job %q, which is %s; stop it or wait until it ends", ErrConflict, name, job.Name, job.Status)
	}
	if err := txn.Delete(tableEndpoints, raw); err != nil {
		return "", err
	}
	return ep.GetEndpointArn(), nil
}

// endpointUser returns a benchmark job that is not terminal and targets ep
// (by name or ARN), or nil.
func endpointUser(txn *memdb.Txn, account string, ep *pb.DescribeEndpointResponse) (*Job, error) {
	it, err := txn.Get(tableJobs, "account", KindBenchmark+"/"+account)
	if err != nil {
		return nil, err
	}
	for j := it.Next(); j != nil; j = it.Next() {
		job := j.(*Job)
		if Terminal(job.Status) {
			continue
		}
		if id := job.Benchmark.GetJob().GetBenchmarkTarget().GetEndpoint().GetIdentifier(); id == ep.GetEndpointName() || id == ep.GetEndpointArn() {
			return job, nil
		}
	}
	return nil, nil
}

// Endpoint returns a registered endpoint.
func (s *Store) Endpoint(account, name string) (*pb.DescribeEndpointResponse, error) {
	raw, err := s.db.Txn(false).First(tableEndpoints, "id", account+"/"+name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: endpoint %q is not registered", ErrNotFound, name)
	}
	return raw.(*Endpoint).Record.GetEndpoint(), nil
}

// Endpoints returns an account's registered endpoints, by name.
func (s *Store) Endpoints(account string) ([]*pb.DescribeEndpointResponse, error) {
	it, err := s.db.Txn(false).Get(tableEndpoints, "account", account)
	if err != nil {
		return nil, err
	}
	var out []*pb.DescribeEndpointResponse
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Endpoint).Record.GetEndpoint())
	}
	return out, nil
}
