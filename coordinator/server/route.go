package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Metadata headers.
const (
	// ConsistencyHeader set to "stale" lets any node answer a read from its
	// local state.
	ConsistencyHeader = "x-perfleet-consistency"
	// forwardedHeader marks a request a follower forwarded, so that it is
	// never forwarded twice.
	forwardedHeader = "x-perfleet-forwarded"
)

type route int

const (
	routeLocal route = iota // answered by the receiving node
	routeWrite              // must run on the leader
	routeRead               // linearizable on the leader unless stale is asked
)

// routes classifies every unary method. InferenceOptimization's Create,
// Delete and Stop are writes, Describe and List reads.
var routes = func() map[string]route {
	m := map[string]route{
		pb.OperatorService_Join_FullMethodName:               routeWrite,
		pb.OperatorService_RaftRemovePeer_FullMethodName:     routeWrite,
		pb.OperatorService_RaftTransferLeader_FullMethodName: routeWrite,
		pb.OperatorService_RaftListPeers_FullMethodName:      routeRead,
		pb.FleetService_ListAgents_FullMethodName:            routeRead,
		pb.FleetService_DescribeAgent_FullMethodName:         routeRead,
		pb.FleetService_LaunchModelServer_FullMethodName:     routeWrite, // control streams end at the leader
		pb.FleetService_StopModelServer_FullMethodName:       routeWrite,
		pb.OperatorService_RecordAuditEvents_FullMethodName:  routeWrite,
		pb.OperatorService_ListGossipKeys_FullMethodName:     routeRead,
		pb.OperatorService_InstallGossipKey_FullMethodName:   routeWrite,
		pb.OperatorService_UseGossipKey_FullMethodName:       routeWrite,
		pb.OperatorService_RemoveGossipKey_FullMethodName:    routeWrite,
		pb.ACLService_WhoAmI_FullMethodName:                  routeLocal,
	}
	acl := pb.File_perfleet_v1_acl_proto.Services().ByName("ACLService")
	for i := 0; i < acl.Methods().Len(); i++ {
		name := string(acl.Methods().Get(i).Name())
		full := "/" + string(acl.FullName()) + "/" + name
		if _, set := m[full]; set {
			continue
		}
		switch {
		case strings.HasPrefix(name, "Get"), strings.HasPrefix(name, "List"), name == "LookupEvents":
			m[full] = routeRead
		default:
			m[full] = routeWrite
		}
	}
	svc := pb.File_perfleet_v1_inference_optimization_proto.Services().ByName("InferenceOptimization")
	for i := 0; i < svc.Methods().Len(); i++ {
		name := string(svc.Methods().Get(i).Name())
		full := "/" + string(svc.FullName()) + "/" + name
		switch {
		case strings.HasPrefix(name, "Describe"), strings.HasPrefix(name, "List"), strings.HasPrefix(name, "Get"):
			m[full] = routeRead
		default:
			m[full] = routeWrite
		}
	}
	return m
}()

// replyTypes maps a method to its response message type, for forwarding.
var replyTypes = func() map[string]protoreflect.MessageType {
	m := map[string]protoreflect.MessageType{}
	for _, fd := range []protoreflect.FileDescriptor{pb.File_perfleet_v1_inference_optimization_proto, pb.File_perfleet_v1_cluster_proto, pb.File_perfleet_v1_agent_proto, pb.File_perfleet_v1_acl_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				md := svc.Methods().Get(j)
				if md.IsStreamingClient() || md.IsStreamingServer() {
					continue
				}
				mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
				if err != nil {
					panic(err)
				}
				m["/"+string(svc.FullName())+"/"+string(md.Name())] = mt
			}
		}
	}
	return m
}()

// routeUnary sends writes and linearizable reads to the leader, checks
// leadership for reads answered here, and maps errors to gRPC statuses once.
// A call that fails with NotLeader before anything was applied (leadership
// moved while it waited) is routed again, a few times at most; a call that
// was itself forwarded is not, so only the first node retries.
func (s *Server) routeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r := routes[info.FullMethod]
	if r == routeRead && staleOK(ctx) {
		r = routeLocal
	}
	for attempt := 0; ; attempt++ {
		if r != routeLocal && !s.IsLeader() {
			resp, err := s.forward(ctx, info.FullMethod, req)
			if !errors.Is(err, errMovedHere) {
				return resp, err
			}
		}
		var err error
		if r == routeRead {
			err = s.verifyLeader(ctx)
		}
		var resp any
		if err == nil {
			resp, err = handler(ctx, req)
		}
		if errors.Is(err, endpoint.ErrNotLeader) && attempt < 3 && !wasForwarded(ctx) && ctx.Err() == nil {
			continue
		}
		return resp, endpoint.ToStatus(err)
	}
}

// errMovedHere tells routeUnary that the leader it was about to forward to is
// this node: the call runs locally.
var errMovedHere = errors.New("leadership moved to this node")

func wasForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedHeader)) > 0
}

func staleOK(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(ConsistencyHeader) {
		if strings.EqualFold(v, "stale") {
			return true
		}
	}
	return false
}

// verifyLeader makes a read linearizable: the leader has applied everything
// committed before its term (a barrier, once per term, in the leader loop) and
// still holds leadership (VerifyLeader, per read).
func (s *Server) verifyLeader(ctx context.Context) error {
	for !s.leaderReady.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if !s.IsLeader() {
			return fmt.Errorf("%w: leadership changed", endpoint.ErrNotLeader)
		}
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", endpoint.ErrNotLeader, err)
	}
	return nil
}

// forward sends the call to the leader and returns its answer unchanged. It
// waits for an election to finish, and retries while the node it reached
// answers NotLeader (nothing was applied there), for up to 5 s or the call's
// deadline.
func (s *Server) forward(ctx context.Context, method string, req any) (any, error) {
	if wasForwarded(ctx) {
		return nil, endpoint.ToStatus(fmt.Errorf("%w: this node no longer leads", endpoint.ErrNotLeader))
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := md.Copy()
	out.Set(forwardedHeader, s.cfg.NodeID)
	s.forwardIdentity(ctx, out)
	octx := metadata.NewOutgoingContext(ctx, out)
	deadline := time.Now().Add(5 * time.Second)
	for {
		addr, err := s.leaderGRPCAddr(ctx)
		if err != nil {
			return nil, endpoint.ToStatus(err)
		}
		if addr == s.cfg.GRPCAdvertise {
			return nil, errMovedHere
		}
		conn, err := s.conns.get(addr)
		if err != nil {
			return nil, endpoint.ToStatus(fmt.Errorf("%w: dial leader %s: %v", endpoint.ErrUnavailable, addr, err))
		}
		reply := replyTypes[method].New().Interface()
		err = conn.Invoke(octx, method, req, reply)
		if err == nil {
			return reply, nil
		}
		if endpoint.Reason(err) != "NotLeader" || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderGRPCAddr finds the leader's API address, waiting up to 5 s for an
// election to finish, but giving up 250 ms before the call's deadline so the
// caller hears why rather than a bare deadline error.
func (s *Server) leaderGRPCAddr(ctx context.Context) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-250*time.Millisecond).Before(deadline) {
		deadline = dl.Add(-250 * time.Millisecond)
	}
	for {
		addr, id := s.leaderAddrNow()
		if addr != "" {
			return addr, nil
		}
		if time.Now().After(deadline) {
			if id != "" {
				return "", fmt.Errorf("%w: leader %s has not registered its API address yet; retry", endpoint.ErrUnavailable, id)
			}
			return "", fmt.Errorf("%w: no cluster leader (is a quorum of servers up?)", endpoint.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: no cluster leader before the deadline", endpoint.ErrUnavailable)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// leaderAddrNow returns the leader's ID and API address without waiting;
// the address is empty while no leader is known or it has not registered one.
func (s *Server) leaderAddrNow() (addr string, id raft.ServerID) {
	_, id = s.raft.LeaderWithID()
	switch {
	case id == "":
	case id == raft.ServerID(s.cfg.NodeID):
		addr = s.cfg.GRPCAdvertise
	default:
		if srv := s.State().Server(string(id)); srv != nil {
			addr = srv.GetGrpcAddr()
		} else {
			addr = s.disc.grpcAddrOf(string(id))
		}
	}
	return addr, id
}

// connPool keeps one client connection per peer address.
type connPool struct {
	mu     sync.Mutex
	creds  credentials.TransportCredentials
	opts   []grpc.DialOption
	conns  map[string]*grpc.ClientConn
	closed bool // after shutdown began: no new connections
}

// newConnPool dials peers with creds: the server's mutual-TLS client side,
// or plaintext with --insecure-loopback; opts add to them (tracing).
func newConnPool(creds credentials.TransportCredentials, opts ...grpc.DialOption) *connPool {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	return &connPool{creds: creds, opts: opts, conns: map[string]*grpc.ClientConn{}}
}

func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	if p.closed {
		return nil, fmt.Errorf("%w: the server is shutting down", endpoint.ErrUnavailable)
	}
	c, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(p.creds)}, p.opts...)...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
	p.closed = true
}

// routeStream relays a follower's Watch to the leader, whose runner holds
// the live metrics; without a known leader the local handler answers with
// the replicated state alone.
func (s *Server) routeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != pb.InferenceOptimization_WatchAIBenchmarkJob_FullMethodName || s.IsLeader() || wasForwarded(ss.Context()) {
		return handler(srv, ss)
	}
	ctx := ss.Context()
	addr, _ := s.leaderAddrNow()
	if addr == "" || addr == s.cfg.GRPCAdvertise {
		return handler(srv, ss)
	}
	conn, err := s.conns.get(addr)
	if err != nil {
		return handler(srv, ss)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := md.Copy()
	out.Set(forwardedHeader, s.cfg.NodeID)
	cs, err := conn.NewStream(metadata.NewOutgoingContext(ctx, out), &grpc.StreamDesc{ServerStreams: true}, info.FullMethod)
	if err != nil {
		return err
	}
	req := &pb.WatchAIBenchmarkJobRequest{}
	if err := ss.RecvMsg(req); err != nil {
		return err
	}
	if err := cs.SendMsg(req); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		m := &pb.WatchAIBenchmarkJobResponse{}
		if err := cs.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(m); err != nil {
			return err
		}
	}
}
