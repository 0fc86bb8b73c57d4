package control

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// welcomer is a coordinator that accepts every stream as the leader.
type welcomer struct {
	pb.UnimplementedAgentServiceServer
}

func (welcomer) Connect(s pb.AgentService_ConnectServer) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	if err := s.Send(&pb.ConnectResponse{Body: &pb.ConnectResponse_Welcome{Welcome: &pb.Welcome{LeaderId: "c2", Term: 3}}}); err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err != nil {
			return nil
		}
	}
}

// A coordinator address that accepts connections and never answers (a
// killed leader whose address swallows packets behaves alike, until a 20 s
// dial timeout) must cost the agent only its handshake timeout.
func TestSilentCoordinatorCostsOnlyTheHandshakeTimeout(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterAgentServiceServer(srv, welcomer{})
	go srv.Serve(ln)
	defer srv.Stop()

	var calls atomic.Int32
	c := New(Config{AgentID: "a1", Version: "test", HandshakeTimeout: 500 * time.Millisecond, BackoffMin: 10 * time.Millisecond,
		Coordinators: func() []string {
			if calls.Add(1) == 1 {
				return []string{silent.Addr().String()} // the first try meets the silent one
			}
			return []string{silent.Addr().String(), ln.Addr().String()}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go c.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for c.Connects() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no control stream within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("connected after %s; the silent coordinator should cost about the 500 ms handshake timeout", took)
	}
	if l, ok := c.Leader(); !ok || l != "c2" {
		t.Fatalf("leader %q, %v", l, ok)
	}
}
