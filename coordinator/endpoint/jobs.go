package endpoint

import (
	"context"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// The job operations below are shared by benchmark and recommendation jobs;
// kind is the ARN resource type.

// jobName resolves a job identifier of the caller's account.
func (e *Endpoint) jobName(ctx context.Context, field, ident, kind string) (account, name string, err error) {
	account = e.b.Account(ctx)
	var c validate.Checker
	name = e.identifierName(&c, field, ident, kind, account)
	return account, name, c.Err()
}

// getJob returns one job of the caller's account.
func (e *Endpoint) getJob(ctx context.Context, field, ident, kind string) (*state.Job, error) {
	account, name, err := e.jobName(ctx, field, ident, kind)
	if err != nil {
		return nil, err
	}
	return e.b.State().Job(kind, account, name)
}

// stopJob moves an InProgress job to Stopping; a job already Stopping or
// terminal is left as it is (Stop is idempotent).
func (e *Endpoint) stopJob(ctx context.Context, field, ident, kind string) (string, error) {
	account, name, err := e.jobName(ctx, field, ident, kind)
	if err != nil {
		return "", err
	}
	res, err := e.setStatus(ctx, &pb.SetJobStatusCommand{Kind: kind, AccountId: account, Name: name,
		Status: state.StatusStopping, FromStatuses: []string{state.StatusInProgress}})
	if err != nil {
		return "", err
	}
	return res.ARN, nil
}

// deleteJob deletes a terminal job.
func (e *Endpoint) deleteJob(ctx context.Context, field, ident, kind string) (string, error) {
	account, name, err := e.jobName(ctx, field, ident, kind)
	if err != nil {
		return "", err
	}
	return e.remove(ctx, kind, account, name)
}

// listJobs returns one page of an account's jobs of a kind.
func (e *Endpoint) listJobs(ctx context.Context, kind string, q *listQuery) ([]*state.Job, string, error) {
	q.allowStatus, q.kind = true, kind
	if err := q.validate(); err != nil {
		return nil, "", err
	}
	account := e.b.Account(ctx)
	jobs, err := e.b.State().Jobs(kind, account)
	if err != nil {
		return nil, "", err
	}
	rows := make([]listRow, len(jobs))
	for i, j := range jobs {
		rows[i] = listRow{name: j.Name, created: j.CreationNanos(), status: j.Status, item: j}
	}
	page, next, err := q.page(account, rows, e.b.PageKey())
	if err != nil {
		return nil, "", err
	}
	out := make([]*state.Job, len(page))
	for i, r := range page {
		out[i] = r.item.(*state.Job)
	}
	return out, next, nil
}

// checkJobCommon checks the fields benchmark and recommendation jobs share
// and resolves the workload config identifier to a bare name.
func (e *Endpoint) checkJobCommon(c *validate.Checker, nameField, name, wlIdent, roleARN, account string, tags []*pb.Tag, token string) string {
	c.Check(nameField, names.Name(name))
	wl := e.identifierName(c, "ai_workload_config_identifier", wlIdent, state.KindWorkloadConfig, account)
	c.Check("role_arn", names.RoleARN(roleARN))
	if roleARN != "" && e.b.State().ACLEnabled() {
		// With ACLs on, a job acts as its role: the role must exist (the
		// caller's perfleet:PassRole on it is checked before the handler).
		if p, err := e.b.State().Principal(roleARN); err != nil || p.GetType() != pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
			c.Addf("role_arn", "must name an existing role (perfleet acl role create); %s is not one", roleARN)
		} else if p.GetAccountId() != account {
			// The job acts as its role, also towards AWS (STS AssumeRole
			// for Secrets Manager): a tenant must not borrow another's.
			c.Addf("role_arn", "must be a role of the job's account %s; %s belongs to account %s", account, roleARN, p.GetAccountId())
		}
	}
	checkTags(c, tags)
	checkClientToken(c, token)
	return wl
}
