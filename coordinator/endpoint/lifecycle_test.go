package endpoint_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

var (
	inUse      = want{code: codes.AlreadyExists, reason: "ResourceInUse", rule: "already exists"}
	notFound   = want{code: codes.NotFound, reason: "ResourceNotFound", rule: "does not exist"}
	conflict   = want{code: codes.FailedPrecondition, reason: "ResourceInUse"}
	overLimit  = want{code: codes.ResourceExhausted, reason: "ResourceLimitExceeded", rule: "limit 2"}
	tokenReuse = invalid("client_token", `token "tok-1" was first used for`)
)

func TestDuplicateNames(t *testing.T) {
	v := withWorkloads(t)
	v.mustCreateBench(benchReq("job"))
	v.mustCreateRec(recReq("job")) // names are unique per kind
	_, err := v.createConfig(configReq("wl"))
	checkErr(t, err, inUse)
	_, err = v.createBench(benchReq("job"))
	checkErr(t, err, inUse)
	_, err = v.createRec(recReq("job"))
	checkErr(t, err, inUse)
}

func TestNamesAreUniquePerAccount(t *testing.T) {
	v := withWorkloads(t)
	w := v.as(otherAccount)
	arn := w.mustCreateConfig(configReq("wl"))
	if want := scope.Build(otherAccount, state.KindWorkloadConfig, "wl"); arn != want {
		t.Fatalf("ARN = %q, want %q", arn, want)
	}
	v.mustCreateBench(benchReq("b1"))
	w.mustCreateBench(benchReq("b1"))
	// Each account sees only its own resources.
	for _, e := range []*env{v, w} {
		list, err := e.e.ListAIWorkloadConfigs(e.ctx, &pb.ListAIWorkloadConfigsRequest{})
		if err != nil || len(list.GetAiWorkloadConfigs()) == 0 {
			t.Fatalf("List = %v, %v", list, err)
		}
		for _, c := range list.GetAiWorkloadConfigs() {
			if a, _ := scopeAccount(c.GetAiWorkloadConfigArn()); a != e.b.account {
				t.Fatalf("account %s lists %s", e.b.account, c.GetAiWorkloadConfigArn())
			}
		}
	}
	_, err := w.e.DescribeAIWorkloadConfig(w.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "wl-nodata"})
	checkErr(t, mapErr(err), notFound)
}

func TestJobNeedsAnExistingWorkloadConfig(t *testing.T) {
	v := newEnv(t)
	r := benchReq("b1")
	r.AiWorkloadConfigIdentifier = "nope"
	_, err := v.createBench(r)
	checkErr(t, err, want{code: codes.NotFound, reason: "ResourceNotFound", rule: `ai-workload-config "nope" does not exist`})
	_, err = v.createRec(recReq("r1"))
	checkErr(t, err, want{code: codes.NotFound, reason: "ResourceNotFound", rule: `ai-workload-config "wl" does not exist`})
}

func TestDeleteRules(t *testing.T) {
	v := withWorkloads(t)
	bArn := v.mustCreateBench(benchReq("b1"))
	rArn := v.mustCreateRec(recReq("r1"))
	delConfig := func() (string, error) {
		resp, err := v.e.DeleteAIWorkloadConfig(v.ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
		return resp.GetAiWorkloadConfigArn(), mapErr(err)
	}
	delBench := func() (string, error) {
		resp, err := v.e.DeleteAIBenchmarkJob(v.ctx, &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: "b1"})
		return resp.GetAiBenchmarkJobArn(), mapErr(err)
	}
	delRec := func() (string, error) {
		resp, err := v.e.DeleteAIRecommendationJob(v.ctx, &pb.DeleteAIRecommendationJobRequest{AiRecommendationJobName: "r1"})
		return resp.GetAiRecommendationJobArn(), mapErr(err)
	}
	stopBench := func() string {
		resp, err := v.e.StopAIBenchmarkJob(v.ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: "b1"})
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
		return resp.GetAiBenchmarkJobArn()
	}
	mustFail := func(f func() (string, error), w want) {
		t.Helper()
		_, err := f()
		checkErr(t, err, w)
	}

	// InProgress: neither the jobs nor the config they use can go.
	mustFail(delConfig, want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: "is referenced by"})
	mustFail(delBench, want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: "is InProgress"})
	mustFail(delRec, conflict)

	// Stop moves b1 to Stopping, which is still not terminal.
	if got := stopBench(); got != bArn {
		t.Fatalf("Stop = %q, want %q", got, bArn)
	}
	mustFail(delBench, want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: "is Stopping"})
	v.setStatus(state.KindBenchmark, "b1", state.StatusStopped, state.StatusStopping)
	mustFail(delConfig, conflict) // r1 is still InProgress
	v.setStatus(state.KindRecommendation, "r1", state.StatusFailed, state.StatusInProgress)

	if a, err := delConfig(); err != nil || a != scope.Build(account, state.KindWorkloadConfig, "wl") {
		t.Fatalf("delete config once its jobs ended = %q, %v", a, err)
	}
	if a, err := delBench(); err != nil || a != bArn {
		t.Fatalf("delete Stopped job = %q, %v", a, err)
	}
	if a, err := delRec(); err != nil || a != rArn {
		t.Fatalf("delete Failed job = %q, %v", a, err)
	}
	mustFail(delConfig, notFound)
	mustFail(delBench, notFound)
	mustFail(delRec, notFound)
	_, err := v.e.DescribeAIBenchmarkJob(v.ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "b1"})
	checkErr(t, mapErr(err), notFound)
}

func TestStopIsIdempotent(t *testing.T) {
	v := withWorkloads(t)
	arns := map[string]string{}
	for _, n := range []string{"running", "done", "failed", "stopped"} {
		arns[n] = v.mustCreateRec(recReq(n))
	}
	v.setStatus(state.KindRecommendation, "done", state.StatusCompleted, state.StatusInProgress)
	v.setStatus(state.KindRecommendation, "failed", state.StatusFailed, state.StatusInProgress)
	v.setStatus(state.KindRecommendation, "stopped", state.StatusStopped, state.StatusInProgress)
	for name, after := range map[string]string{
		"running": state.StatusStopping, "done": state.StatusCompleted, "failed": state.StatusFailed, "stopped": state.StatusStopped,
	} {
		for i := 0; i < 2; i++ { // the second Stop of "running" finds it Stopping
			v.b.clock.now = v.b.clock.now.Add(1e9)
			resp, err := v.e.StopAIRecommendationJob(v.ctx, &pb.StopAIRecommendationJobRequest{AiRecommendationJobName: name})
			if err != nil || resp.GetAiRecommendationJobArn() != arns[name] {
				t.Fatalf("Stop(%s) = %v, %v", name, resp, err)
			}
		}
		d, err := v.e.DescribeAIRecommendationJob(v.ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: name})
		if err != nil || d.GetAiRecommendationJobStatus() != after {
			t.Fatalf("after Stop, %s is %s (%v), want %s", name, d.GetAiRecommendationJobStatus(), err, after)
		}
	}
	_, err := v.e.StopAIBenchmarkJob(v.ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: "running"}) // other kind
	checkErr(t, mapErr(err), notFound)
}

func TestActiveJobLimit(t *testing.T) {
	v := withWorkloads(t)
	v.b.maxActive = 2
	v.mustCreateBench(benchReq("b1"))
	v.mustCreateBench(benchReq("b2"))
	_, err := v.createBench(benchReq("b3"))
	checkErr(t, err, overLimit)
	v.mustCreateRec(recReq("r1")) // counted per kind
	v.as(otherAccount).mustCreateConfig(configReq("wl"))
	v.as(otherAccount).mustCreateBench(benchReq("b3")) // and per account
	v.setStatus(state.KindBenchmark, "b1", state.StatusCompleted, state.StatusInProgress)
	v.mustCreateBench(benchReq("b3"))
}

func TestClientTokenIdempotency(t *testing.T) {
	v := withWorkloads(t)
	req := benchReq("b1")
	req.ClientToken = "tok-1"
	first := v.mustCreateBench(req)
	before := v.b.State().Hash()
	v.b.clock.now = v.b.clock.now.Add(5e9) // a retry comes later
	if again := v.mustCreateBench(req); again != first {
		t.Fatalf("replay = %q, want %q", again, first)
	}
	if v.b.State().Hash() != before {
		t.Fatal("a replay changed the state")
	}
	other := benchReq("b2")
	other.ClientToken = "tok-1"
	_, err := v.createBench(other)
	checkErr(t, err, tokenReuse)
	if _, err := v.e.DescribeAIBenchmarkJob(v.ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "b2"}); err == nil {
		t.Fatal("a rejected token reuse created the job")
	}

	// Configs and recommendation jobs replay the same way; tokens are per
	// operation and per account.
	cfg := configReq("wl-tok")
	cfg.ClientToken = "tok-1"
	cArn := v.mustCreateConfig(cfg)
	if again := v.mustCreateConfig(cfg); again != cArn {
		t.Fatalf("config replay = %q, want %q", again, cArn)
	}
	rec := recReq("r1")
	rec.ClientToken = "tok-1"
	rArn := v.mustCreateRec(rec)
	if again := v.mustCreateRec(rec); again != rArn {
		t.Fatalf("recommendation replay = %q, want %q", again, rArn)
	}
	w := v.as(otherAccount)
	w.mustCreateConfig(configReq("wl"))
	if a := w.mustCreateBench(req); a != scope.Build(otherAccount, state.KindBenchmark, "b1") {
		t.Fatalf("other account's create with the same token = %q", a)
	}
	// Without a token a retry is a duplicate.
	req.ClientToken = ""
	_, err = v.createBench(req)
	checkErr(t, err, inUse)
}

// scopeAccount returns the account of an ARN built by scope.
func scopeAccount(a string) (string, bool) {
	const prefix = "arn:aws:sagemaker:us-east-1:"
	if len(a) < len(prefix)+12 || a[:len(prefix)] != prefix {
		return "", false
	}
	return a[len(prefix) : len(prefix)+12], true
}
