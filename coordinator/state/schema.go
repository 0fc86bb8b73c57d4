// Package state is the coordinator's replicated state store: an indexed,
// in-memory database (hashicorp/go-memdb) that only the Raft FSM writes.
// Records are protobuf messages that are never mutated once inserted: a change
// inserts a changed copy, so readers can hold records without locks.
package state

import (
	"github.com/hashicorp/go-memdb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Table names.
const (
	tableWorkloadConfigs = "workload_configs"
	tableJobs            = "jobs"
	tableClientTokens    = "client_tokens"
	tableServers         = "servers"
	tableMeta            = "meta"
	tableAgents          = "agents"
)

// Job kinds, the ARN resource types of jobs.
const (
	KindBenchmark      = "ai-benchmark-job"
	KindRecommendation = "ai-recommendation-job"
	KindWorkloadConfig = "ai-workload-config"
)

// Job statuses.
const (
	StatusInProgress = "InProgress"
	StatusCompleted  = "Completed"
	StatusFailed     = "Failed"
	StatusStopping   = "Stopping"
	StatusStopped    = "Stopped"
)

// Terminal reports whether a job status is final.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusStopped
}

// WorkloadConfig is a row of the workload config table.
type WorkloadConfig struct {
	Key     string // account/name
	Account string
	Name    string
	Record  *pb.WorkloadConfigRecord
}

// Job is a row of the jobs table; exactly one of Benchmark and Recommendation
// is set, as Kind says.
type Job struct {
	Key         string // kind/account/name
	Kind        string
	Account     string
	Name        string
	Status      string
	StatusKey   string // kind/status
	AccountKey  string // kind/account
	WorkloadKey string // account/workload config name
	Benchmark   *pb.BenchmarkJobRecord
	Recommend   *pb.RecommendationJobRecord
}

// ClientToken is a row of the idempotency table.
type ClientToken struct {
	Key    string // account/operation/token
	Record *pb.ClientTokenRecord
}

// Server is a row of the coordinator server table.
type Server struct {
	ID     string
	Record *pb.ServerIdentity
}

// Agent is a row of the agent registry.
type Agent struct {
	ID     string
	Status string
	Record *pb.Agent
}

// Meta is the single row of cluster settings.
type Meta struct {
	ID     string
	Record *pb.ClusterMeta
}

const metaID = "cluster"

func stringIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: name == "id", Indexer: &memdb.StringFieldIndex{Field: field}}
}

func schema() *memdb.DBSchema {
	tables := map[string]*memdb.TableSchema{
		tableWorkloadConfigs: {Name: tableWorkloadConfigs, Indexes: map[string]*memdb.IndexSchema{
			"id":      stringIndex("id", "Key"),
			"account": stringIndex("account", "Account"),
		}},
		tableJobs: {Name: tableJobs, Indexes: map[string]*memdb.IndexSchema{
			"id":       stringIndex("id", "Key"),
			"account":  stringIndex("account", "AccountKey"),
			"status":   stringIndex("status", "StatusKey"),
			"workload": stringIndex("workload", "WorkloadKey"),
		}},
		tableClientTokens: {Name: tableClientTokens, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Key"),
		}},
		tableServers: {Name: tableServers, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ID"),
		}},
		tableMeta: {Name: tableMeta, Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ID"),
		}},
		tableAgents: {Name: tableAgents, Indexes: map[string]*memdb.IndexSchema{
			"id":     stringIndex("id", "ID"),
			"status": {Name: "status", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Status"}},
		}},
	}
	tables[tableEndpoints] = endpointTable()
	for name, t := range aclTables() {
		tables[name] = t
	}
	return &memdb.DBSchema{Tables: tables}
}

func newWorkloadConfig(r *pb.WorkloadConfigRecord) *WorkloadConfig {
	name := r.GetConfig().GetAiWorkloadConfigName()
	return &WorkloadConfig{Key: r.GetAccountId() + "/" + name, Account: r.GetAccountId(), Name: name, Record: r}
}

func newBenchmarkJob(r *pb.BenchmarkJobRecord) *Job {
	j := r.GetJob()
	return newJob(KindBenchmark, r.GetAccountId(), j.GetAiBenchmarkJobName(), j.GetAiBenchmarkJobStatus(), r.GetWorkloadConfigName(), r, nil)
}

func newRecommendationJob(r *pb.RecommendationJobRecord) *Job {
	j := r.GetJob()
	return newJob(KindRecommendation, r.GetAccountId(), j.GetAiRecommendationJobName(), j.GetAiRecommendationJobStatus(), r.GetWorkloadConfigName(), nil, r)
}

func newJob(kind, account, name, status, workload string, b *pb.BenchmarkJobRecord, r *pb.RecommendationJobRecord) *Job {
	return &Job{
		Key: jobKey(kind, account, name), Kind: kind, Account: account, Name: name, Status: status,
		StatusKey: kind + "/" + status, AccountKey: kind + "/" + account, WorkloadKey: account + "/" + workload,
		Benchmark: b, Recommend: r,
	}
}

func jobKey(kind, account, name string) string { return kind + "/" + account + "/" + name }

// ARN returns the job's ARN.
func (j *Job) ARN() string {
	if j.Benchmark != nil {
		return j.Benchmark.GetJob().GetAiBenchmarkJobArn()
	}
	return j.Recommend.GetJob().GetAiRecommendationJobArn()
}

// RoleARN returns the job's IAM role ARN, its role_arn (a recommendation's
// child jobs carry their parent's).
func (j *Job) RoleARN() string {
	if j.Benchmark != nil {
		return j.Benchmark.GetJob().GetRoleArn()
	}
	return j.Recommend.GetJob().GetRoleArn()
}

// CreationNanos returns the job's creation time in Unix nanoseconds.
func (j *Job) CreationNanos() int64 {
	if j.Benchmark != nil {
		return j.Benchmark.GetJob().GetCreationTime().AsTime().UnixNano()
	}
	return j.Recommend.GetJob().GetCreationTime().AsTime().UnixNano()
}
