package server

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/ratelimit"
)

// twoTenants starts a node with per-principal rate limits and ACLs on, and
// returns bearer contexts for two users in different accounts who may list.
func twoTenants(t testing.TB, rate float64, burst int) (*Server, context.Context, context.Context) {
	s := TestCluster(t, 1, nil)[0]
	ctx := context.Background()
	aclc := pb.NewACLServiceClient(testConn(t, s.Addr()))
	boot, err := aclc.Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(ctx, boot.GetToken().GetSecret())
	var out []context.Context
	for _, acct := range []string{"111111111111", "222222222222"} {
		u, err := aclc.CreatePrincipal(admin, &pb.CreatePrincipalRequest{AccountId: acct, Name: "u"})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := aclc.PutPolicy(admin, &pb.PutPolicyRequest{AccountId: acct, Name: "list",
			Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:List*","Resource":"*"}]}`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := aclc.AttachPolicy(admin, &pb.AttachPolicyRequest{PrincipalArn: u.GetPrincipal().GetArn(), PolicyArn: pol.GetPolicy().GetArn()}); err != nil {
			t.Fatal(err)
		}
		tok, err := aclc.CreateToken(admin, &pb.CreateTokenRequest{PrincipalArn: u.GetPrincipal().GetArn()})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bearer(ctx, tok.GetToken().GetSecret()))
	}
	// The limits start after the set-up, whose admin calls would count.
	s.cfg.RateLimit, s.cfg.RateBurst = rate, burst
	s.sec.limit = ratelimit.New(rate, burst)
	return s, out[0], out[1]
}

// TestRateLimitIsPerPrincipal drains one tenant's bucket: its calls fail
// with RESOURCE_EXHAUSTED / ThrottlingException, the other tenant's do not.
func TestRateLimitIsPerPrincipal(t *testing.T) {
	s, noisy, quiet := twoTenants(t, 2, 5)
	c := client(t, s.Addr())
	throttled := 0
	for i := 0; i < 20; i++ {
		_, err := c.ListAIWorkloadConfigs(noisy, &pb.ListAIWorkloadConfigsRequest{})
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted || reason(err) != "ThrottlingException" {
				t.Fatalf("call %d: %v", i, err)
			}
			throttled++
		}
	}
	if throttled < 10 {
		t.Fatalf("20 back-to-back calls against a burst of 5: only %d throttled", throttled)
	}
	if _, err := c.ListAIWorkloadConfigs(quiet, &pb.ListAIWorkloadConfigsRequest{}); err != nil {
		t.Fatalf("the quiet tenant was throttled: %v", err)
	}
}

// BenchmarkNoisyTenantP99 measures a quiet tenant's List p99 alone and while
// a noisy tenant floods the node from 8 goroutines (throttled at 50/s); it
// reports both and their ratio (bench/RESULTS.md).
func BenchmarkNoisyTenantP99(b *testing.B) {
	s, noisy, quiet := twoTenants(b, 50, 50)
	c := pb.NewInferenceOptimizationClient(testConn(b, s.Addr()))
	p99 := func(n int) time.Duration {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			st := time.Now()
			if _, err := c.ListAIWorkloadConfigs(quiet, &pb.ListAIWorkloadConfigsRequest{}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(st))
			time.Sleep(25 * time.Millisecond) // the quiet tenant stays under its own limit (50/s)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat[len(lat)*99/100]
	}
	n := max(b.N, 300)
	alone := p99(n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = c.ListAIWorkloadConfigs(noisy, &pb.ListAIWorkloadConfigsRequest{})
			}
		}()
	}
	loaded := p99(n)
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(alone.Microseconds()), "p99-alone-µs")
	b.ReportMetric(float64(loaded.Microseconds()), "p99-noisy-µs")
	b.ReportMetric(float64(loaded)/float64(alone), "ratio")
}
