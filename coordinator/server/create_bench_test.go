package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// BenchmarkCreateBenchmarkJob commits CreateAIBenchmarkJob calls from 64
// concurrent gRPC clients against the leader of a 3-node in-process cluster.
// bench/raftbench measures the same across real processes.
func BenchmarkCreateBenchmarkJob(b *testing.B) {
	servers := TestCluster(b, 3, func(_ int, c *Config) { c.MaxActiveJobs = 0 })
	leader := WaitForLeader(b, servers...)
	ctx := context.Background()
	conn := testConn(b, leader.Addr())
	c := pb.NewInferenceOptimizationClient(conn)
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := c.CreateAIBenchmarkJob(ctx, benchReq(fmt.Sprintf("j%d-%d", w, i), "")); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}
