package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// testPKI is a CA and the certificates issued from it, on disk.
type testPKI struct {
	t   *testing.T
	dir string
	ca  *tlsutil.CA
	cas string // CA file
}

func newTestPKI(t *testing.T) *testPKI {
	ca, err := tlsutil.NewCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := tlsutil.WriteCA(dir, tlsutil.DefaultDomain, ca)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, dir: dir, ca: ca, cas: caFile}
}

func (p *testPKI) issue(o tlsutil.CertOptions) (certFile, keyFile string) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	iss, err := p.ca.Issue(o)
	if err != nil {
		p.t.Fatal(err)
	}
	c, k, err := tlsutil.WriteCert(p.dir, o.Role, o.Region, "", iss)
	if err != nil {
		p.t.Fatal(err)
	}
	return c, k
}

// client dials addr with a certificate of the given options.
func (p *testPKI) client(addr string, o tlsutil.CertOptions) *grpc.ClientConn {
	c, k := p.issue(o)
	r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: p.cas, CertFile: c, KeyFile: k, Region: "us-east-1", PollInterval: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return p.dial(addr, r.ClientConfig())
}

func (p *testPKI) dial(addr string, cfg *tls.Config) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close() })
	return conn
}

func tlsConfig(t *testing.T, p *testPKI, name string) Config {
	cfg := TestConfig(t, name)
	cfg.InsecureLoopback = false
	cfg.TLSCAFile = p.cas
	cfg.TLSCertFile, cfg.TLSKeyFile = p.issue(tlsutil.CertOptions{Role: tlsutil.RoleServer})
	return cfg
}

// TestTLSClusterRefusesWhatItShould runs a 3-node cluster with mutual TLS
// and checks that clients with good certificates work through a follower
// (forwarding is TLS too), that a client certificate naming a principal
// authenticates as it, and that the negatives are refused: no client
// certificate, a foreign CA, an expired certificate, TLS 1.2 against a 1.3
// minimum, and an agent certificate calling server-only RPCs.
func TestTLSClusterRefusesWhatItShould(t *testing.T) {
	p := newTestPKI(t)
	servers := TestCluster(t, 3, func(i int, c *Config) {
		*c = func() Config {
			n := tlsConfig(t, p, c.NodeID)
			n.BootstrapExpect, n.Join = c.BootstrapExpect, c.Join
			return n
		}()
	})
	leader := WaitForLeader(t, servers...)
	follower := followers(servers)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	good := p.client(follower.Addr(), tlsutil.CertOptions{Role: tlsutil.RoleClient})
	io := pb.NewInferenceOptimizationClient(good)
	if _, err := io.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatalf("a client certificate through a follower: %v", err)
	}

	// Principals by certificate: after bootstrap, a certificate naming bob
	// acts as bob without a token.
	boot, err := pb.NewACLServiceClient(good).Bootstrap(ctx, &pb.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := bearer(ctx, boot.GetToken().GetSecret())
	_, err = pb.NewACLServiceClient(good).PutSecret(admin, &pb.PutSecretRequest{Name: "k", Value: []byte("v")})
	wantCode(t, "a secret on a server without encryption at rest", err, codes.FailedPrecondition, "ResourceInUse")
	bob, err := pb.NewACLServiceClient(good).CreatePrincipal(admin, &pb.CreatePrincipalRequest{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{leader.Addr(), follower.Addr()} {
		asBob := p.client(addr, tlsutil.CertOptions{Role: tlsutil.RoleClient, Principal: bob.GetPrincipal().GetArn()})
		who, err := pb.NewACLServiceClient(asBob).WhoAmI(ctx, &pb.WhoAmIRequest{})
		if err != nil || who.GetArn() != bob.GetPrincipal().GetArn() || who.GetAuthenticatedBy() != "certificate" {
			t.Fatalf("WhoAmI with bob's certificate via %s = %v, %v", addr, who, err)
		}
		// bob has no policy: his write is denied on the leader after
		// forwarding, as bob.
		_, err = pb.NewInferenceOptimizationClient(asBob).DeleteAIWorkloadConfig(ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "user/bob") {
			t.Fatalf("bob's delete via %s: %v", addr, err)
		}
	}
	// A plain client certificate with no principal and no token is not a
	// caller once ACLs are on.
	_, err = io.ListAIWorkloadConfigs(ctx, &pb.ListAIWorkloadConfigsRequest{})
	wantCode(t, "certificate without a principal", err, codes.Unauthenticated, "UnrecognizedClientException")

	refused := func(what string, conn *grpc.ClientConn) {
		t.Helper()
		c, cancel := context.WithTimeout(admin, 3*time.Second)
		defer cancel()
		_, err := pb.NewACLServiceClient(conn).WhoAmI(c, &pb.WhoAmIRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: want the handshake refused (Unavailable), got %v", what, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	base := func() *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "server.us-east-1.perfleet", MinVersion: tls.VersionTLS12}
	}
	refused("no client certificate", p.dial(leader.Addr(), base()))

	foreign := newTestPKI(t)
	fc, fk := foreign.issue(tlsutil.CertOptions{Role: tlsutil.RoleClient})
	fpair, err := tls.LoadX509KeyPair(fc, fk)
	if err != nil {
		t.Fatal(err)
	}
	cfg := base()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &fpair, nil }
	refused("a certificate from a foreign CA", p.dial(leader.Addr(), cfg))

	iss, err := p.ca.Issue(tlsutil.CertOptions{Role: tlsutil.RoleClient, Region: "us-east-1", NotBefore: time.Now().Add(-72 * time.Hour), Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg = base()
	cfg.Certificates = []tls.Certificate{expired}
	refused("an expired certificate", p.dial(leader.Addr(), cfg))

	gc, gk := p.issue(tlsutil.CertOptions{Role: tlsutil.RoleClient})
	gpair, err := tls.LoadX509KeyPair(gc, gk)
	if err != nil {
		t.Fatal(err)
	}
	cfg = base()
	cfg.Certificates = []tls.Certificate{gpair}
	cfg.MaxVersion = tls.VersionTLS12
	refused("TLS 1.2 against a 1.3 minimum", p.dial(leader.Addr(), cfg))

	// An agent certificate may open the control stream but not act as a
	// server: Join and RecordAuditEvents are refused.
	agent := p.client(leader.Addr(), tlsutil.CertOptions{Role: tlsutil.RoleAgent})
	_, err = pb.NewOperatorServiceClient(agent).Join(ctx, &pb.JoinRequest{})
	wantCode(t, "agent certificate calling Join", err, codes.PermissionDenied, "AccessDeniedException")
	_, err = pb.NewOperatorServiceClient(agent).RecordAuditEvents(ctx, &pb.RecordAuditEventsRequest{Events: []*pb.AuditEvent{{EventName: "Forged"}}})
	wantCode(t, "agent certificate forging audit records", err, codes.PermissionDenied, "AccessDeniedException")
	// And a client certificate cannot open the agents' control stream.
	stream, err := pb.NewAgentServiceClient(good).Connect(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, "client certificate on the agent stream", err, codes.PermissionDenied, "AccessDeniedException")
}

// TestRaftTransportIsMutualTLS checks the Raft port of a TLS node: a server
// certificate completes the handshake, an agent certificate and plaintext
// do not get a working connection.
func TestRaftTransportIsMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	s := TestCluster(t, 1, func(_ int, c *Config) {
		n := tlsConfig(t, p, c.NodeID)
		n.BootstrapExpect = 1
		*c = n
	})[0]
	dialWith := func(role tlsutil.Role) error {
		c, k := p.issue(tlsutil.CertOptions{Role: role})
		r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: p.cas, CertFile: c, KeyFile: k, Region: "us-east-1", PollInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", s.RaftAddr(), r.ClientConfig())
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil // the server kept the connection: accepted
		}
		return err
	}
	if err := dialWith(tlsutil.RoleServer); err != nil {
		t.Fatalf("a server certificate must be accepted on the Raft port: %v", err)
	}
	if err := dialWith(tlsutil.RoleAgent); err == nil {
		t.Fatal("an agent certificate was accepted on the Raft port")
	}
	plain, err := net.Dial("tcp", s.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, _ = plain.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	_ = plain.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	// At most a TLS alert record (content type 21) comes back, never Raft.
	if n, _ := plain.Read(buf); n > 0 && buf[0] != 21 {
		t.Fatalf("plaintext got an answer that is not a TLS alert: % x", buf[:n])
	}
}

// TestServerRefusesAnAgentCertificate checks that a server will not start
// with an agent's certificate: it could not prove it is a server.
func TestServerRefusesAnAgentCertificate(t *testing.T) {
	p := newTestPKI(t)
	cfg := tlsConfig(t, p, "n")
	cfg.TLSCertFile, cfg.TLSKeyFile = p.issue(tlsutil.CertOptions{Role: tlsutil.RoleAgent})
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "agent") {
		t.Fatalf("want a refusal naming the agent role, got %v", err)
	}
}

// TestRaftAdvertisesADNSName runs a TLS cluster whose servers advertise
// their Raft address as a DNS name (localhost:PORT), as StatefulSet pods do
// with their stable names: Raft records the names and dials them.
func TestRaftAdvertisesADNSName(t *testing.T) {
	p := newTestPKI(t)
	servers := TestCluster(t, 3, func(i int, c *Config) {
		n := tlsConfig(t, p, c.NodeID)
		n.BootstrapExpect, n.Join = c.BootstrapExpect, c.Join
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		n.RaftAddr = fmt.Sprintf("127.0.0.1:%d", port)
		n.RaftAdvertise = fmt.Sprintf("localhost:%d", port)
		*c = n
	})
	leader := WaitForLeader(t, servers...)
	f := leader.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if got := len(f.Configuration().Servers); got != 3 {
		t.Fatalf("%d voters, want 3", got)
	}
	for _, srv := range f.Configuration().Servers {
		if !strings.HasPrefix(string(srv.Address), "localhost:") {
			t.Fatalf("raft records %s at %s, want its advertised DNS name", srv.ID, srv.Address)
		}
	}
	c := pb.NewInferenceOptimizationClient(p.client(leader.Addr(), tlsutil.CertOptions{Role: tlsutil.RoleClient}))
	if _, err := c.CreateAIWorkloadConfig(ctxT(t), &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "by-name",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		eventually(t, 10*time.Second, s.NodeID()+" applied the write", func() bool {
			_, err := s.State().WorkloadConfig("000000000000", "by-name")
			return err == nil
		})
	}
	// Plaintext Raft needs an IP address.
	if _, err := raftAdvertiseAddr("0.0.0.0:7234", true); err == nil {
		t.Fatal("0.0.0.0 accepted as raft_advertise")
	}
}
