package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

const testRegion = "us-east-1"

// testPKI is a CA in a temporary directory.
type testPKI struct {
	dir, caFile string
	ca          *tlsutil.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := tlsutil.NewCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := tlsutil.WriteCA(dir, tlsutil.DefaultDomain, ca)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{dir: dir, caFile: caFile, ca: ca}
}

// issue creates a certificate of role in testRegion and writes it next to
// the CA.
func (p *testPKI) issue(t *testing.T, role tlsutil.Role) (iss *tlsutil.Issued, certFile, keyFile string) {
	t.Helper()
	iss, err := p.ca.Issue(tlsutil.CertOptions{Role: role, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = tlsutil.WriteCert(p.dir, role, testRegion, tlsutil.DefaultDomain, iss)
	if err != nil {
		t.Fatal(err)
	}
	return iss, certFile, keyFile
}

// fakeAgentService is a coordinator's AgentService that records who
// connects, welcomes agents and ends a stream on goodbye.
type fakeAgentService struct {
	pb.UnimplementedAgentServiceServer
	mu      sync.Mutex
	peers   []tlsutil.Identity // the verified identity of each accepted stream
	agents  []string           // the agent ID of each hello
	goodbye bool
}

func (s *fakeAgentService) Connect(stream pb.AgentService_ConnectServer) error {
	id, err := tlsutil.PeerIdentityFromContext(stream.Context())
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if id.Role != tlsutil.RoleAgent {
		return status.Errorf(codes.PermissionDenied, "%s is not an agent", id)
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.peers = append(s.peers, id)
	s.agents = append(s.agents, first.GetHello().GetAgentId())
	s.mu.Unlock()
	if err := stream.Send(&pb.ConnectResponse{Seq: 1,
		Body: &pb.ConnectResponse_Welcome{Welcome: &pb.Welcome{LeaderId: "fake-leader", Term: 1}}}); err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return nil
		}
		if m.GetGoodbye() != nil {
			s.mu.Lock()
			s.goodbye = true
			s.mu.Unlock()
			return nil
		}
	}
}

func (s *fakeAgentService) accepted() ([]tlsutil.Identity, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tlsutil.Identity(nil), s.peers...), append([]string(nil), s.agents...)
}

// startFakeCoordinator serves the fake AgentService on 127.0.0.1 with
// mutual TLS as server.<testRegion>.perfleet of p.
func startFakeCoordinator(t *testing.T, p *testPKI) (string, *fakeAgentService) {
	t.Helper()
	_, cert, key := p.issue(t, tlsutil.RoleServer)
	r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: p.caFile, CertFile: cert, KeyFile: key, Region: testRegion,
		Role: tlsutil.RoleServer, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(r.ServerConfig())))
	svc := &fakeAgentService{}
	pb.RegisterAgentServiceServer(srv, svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), svc
}

// startAgent runs the agent command with args until the returned stop is
// called (or the test ends). Its stdout and stderr (the log) are returned.
func startAgent(t *testing.T, args ...string) (out, log *lockedBuffer, stop func() error) {
	t.Helper()
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "perfleet-agent", Args: cobra.NoArgs, SilenceUsage: true, SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, f) }}
	f.register(cmd)
	out, log = &lockedBuffer{}, &lockedBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(log)
	cmd.SetArgs(append([]string{"--gossip-addr", "127.0.0.1:0", "--join", "127.0.0.1:1", "--simulate-gpus", "1xL4",
		"--data-dir", t.TempDir()}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Error("the agent did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return out, log, stop
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// replaceFile writes data to name atomically, as a careful rotation does.
func replaceFile(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// TestAgentConnectsWithTLS runs the agent command against a coordinator
// that requires mutual TLS: the coordinator sees the agent's certificate
// (role agent), and SIGHUP reloads a rotated certificate without stopping
// the agent, keeping the old one when the new files are not acceptable.
func TestAgentConnectsWithTLS(t *testing.T) {
	pki := newTestPKI(t)
	addr, svc := startFakeCoordinator(t, pki)
	_, cert, key := pki.issue(t, tlsutil.RoleAgent)
	out, log, stop := startAgent(t, "--id", "gpu-tls", "--coordinator", addr, "--region", testRegion,
		"--ca-file", pki.caFile, "--cert-file", cert, "--key-file", key)

	waitFor(t, 10*time.Second, "the agent's control stream", func() bool { p, _ := svc.accepted(); return len(p) > 0 })
	peers, agents := svc.accepted()
	if peers[0].Role != tlsutil.RoleAgent || peers[0].String() != "agent."+testRegion+".perfleet" || agents[0] != "gpu-tls" {
		t.Fatalf("the coordinator saw %v (agent %q), want agent.%s.perfleet (gpu-tls)", peers[0], agents[0], testRegion)
	}
	if !strings.Contains(out.String(), "control stream: mutual TLS as agent."+testRegion+".perfleet") {
		t.Fatalf("banner:\n%s", out.String())
	}

	// Rotate: new files in place, then SIGHUP (the reloader's poll is 10 s).
	// runAgent has caught SIGHUP since before it connected, so the signal
	// cannot kill the test binary.
	next, err := pki.ca.Issue(tlsutil.CertOptions{Role: tlsutil.RoleAgent, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, key, next.KeyPEM)
	replaceFile(t, cert, next.CertPEM)
	serial := "serial=" + next.Cert.SerialNumber.Text(16)
	waitFor(t, 10*time.Second, "the rotated certificate", func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(log.String(), "tls: loaded certificate") && strings.Contains(log.String(), serial)
	})

	// A certificate from another CA is rejected and the current one stays.
	other := newTestPKI(t)
	bad, err := other.ca.Issue(tlsutil.CertOptions{Role: tlsutil.RoleAgent, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, key, bad.KeyPEM)
	replaceFile(t, cert, bad.CertPEM)
	waitFor(t, 10*time.Second, "the rejection of a foreign certificate", func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(log.String(), "rejected new certificate files")
	})
	if strings.Contains(out.String(), "leaving the fleet") {
		t.Fatalf("SIGHUP stopped the agent:\n%s", out.String())
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	bye := svc.goodbye
	svc.mu.Unlock()
	if !bye || !strings.Contains(out.String(), "leaving the fleet") {
		t.Fatalf("the agent did not say goodbye over TLS (goodbye %v):\n%s", bye, out.String())
	}
}

// TestAgentWithForeignCAFailsToConnect: an agent whose CA and certificate
// come from another authority never gets a control stream.
func TestAgentWithForeignCAFailsToConnect(t *testing.T) {
	addr, svc := startFakeCoordinator(t, newTestPKI(t))
	foreign := newTestPKI(t)
	_, cert, key := foreign.issue(t, tlsutil.RoleAgent)
	_, log, stop := startAgent(t, "--id", "gpu-foreign", "--coordinator", addr, "--region", testRegion,
		"--ca-file", foreign.caFile, "--cert-file", cert, "--key-file", key)
	// The control client retries with backoff; give it a few attempts.
	waitFor(t, 5*time.Second, "a failed handshake in the log", func() bool {
		return strings.Contains(log.String(), "control stream ended") && strings.Contains(log.String(), "handshake")
	})
	time.Sleep(2 * time.Second)
	if p, _ := svc.accepted(); len(p) != 0 {
		t.Fatalf("the coordinator accepted %v from an agent of another CA", p)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAgentTransportFlags checks the TLS flags and the plaintext rules.
func TestAgentTransportFlags(t *testing.T) {
	pki := newTestPKI(t)
	_, cert, key := pki.issue(t, tlsutil.RoleAgent)
	_, serverCert, serverKey := pki.issue(t, tlsutil.RoleServer)
	discard := slog.New(slog.DiscardHandler)
	tls := func(f agentFlags) agentFlags {
		f.caFile, f.certFile, f.keyFile = pki.caFile, cert, key
		return f
	}
	for _, tc := range []struct {
		name    string
		f       agentFlags
		region  string
		wantErr []string // substrings of the error; none: success
		desc    string   // substring of the transport's description on success
	}{
		{name: "tls", f: tls(agentFlags{join: "10.0.0.1:7235"}), region: testRegion, desc: "mutual TLS as agent.us-east-1.perfleet"},
		{name: "tls12", f: tls(agentFlags{join: "10.0.0.1:7235", tlsMinVersion: "tls12"}), region: testRegion, desc: "mutual TLS"},
		{name: "missing key", f: agentFlags{join: "10.0.0.1:7235", caFile: pki.caFile, certFile: cert}, region: testRegion,
			wantErr: []string{"--key-file is required", "perfleet tls cert create --agent"}},
		{name: "missing cert and key", f: agentFlags{join: "10.0.0.1:7235", caFile: pki.caFile}, region: testRegion,
			wantErr: []string{"--cert-file and --key-file are required"}},
		{name: "missing ca", f: agentFlags{join: "127.0.0.1:7235", certFile: cert, keyFile: key}, region: testRegion,
			wantErr: []string{"--ca-file is required"}},
		{name: "tls without region", f: tls(agentFlags{join: "10.0.0.1:7235"}), wantErr: []string{"--region"}},
		{name: "tls and insecure", f: tls(agentFlags{join: "10.0.0.1:7235", insecure: true}), region: testRegion,
			wantErr: []string{"--insecure", "not both"}},
		{name: "server certificate", f: agentFlags{join: "10.0.0.1:7235", caFile: pki.caFile, certFile: serverCert, keyFile: serverKey},
			region: testRegion, wantErr: []string{"want agent.us-east-1.perfleet"}},
		{name: "other region", f: tls(agentFlags{join: "10.0.0.1:7235"}), region: "eu-west-1",
			wantErr: []string{"want agent.eu-west-1.perfleet"}},
		{name: "old tls version", f: tls(agentFlags{join: "10.0.0.1:7235", tlsMinVersion: "tls11"}), region: testRegion,
			wantErr: []string{"--tls-min-version"}},
		{name: "plaintext to the network", f: agentFlags{join: "10.0.0.1:7235"},
			wantErr: []string{"10.0.0.1:7235", "not a loopback", "--ca-file", "perfleet tls cert create --agent", "--insecure"}},
		{name: "plaintext to a network coordinator", f: agentFlags{join: "127.0.0.1:7235", coordinators: "127.0.0.1:7233,coord.example:7233"},
			wantErr: []string{"coord.example:7233", "perfleet tls cert create --agent", "--insecure"}},
		{name: "plaintext on loopback", f: agentFlags{join: "127.0.0.1:7235,localhost:7236,[::1]:7237", coordinators: "127.3.2.1:7233"},
			desc: "loopback coordinators only"},
		{name: "insecure", f: agentFlags{join: "10.0.0.1:7235", insecure: true}, desc: "plaintext (--insecure)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if f.tlsMinVersion == "" {
				f.tlsMinVersion = "tls13"
			}
			tr, err := f.transport(tc.region, discard)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error, got a transport %q", tr.desc)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(tr.desc, tc.desc) || len(tr.dialOptions) == 0 || (tr.reloader != nil) != f.useTLS() {
				t.Fatalf("transport %q (%d dial options, reloader %v), want %q", tr.desc, len(tr.dialOptions), tr.reloader != nil, tc.desc)
			}
		})
	}
}

// TestAgentRefusesPlaintextToTheNetwork: the command fails at once, before
// starting anything, and says how to fix it.
func TestAgentRefusesPlaintextToTheNetwork(t *testing.T) {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "perfleet-agent", SilenceUsage: true, SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, f) }}
	f.register(cmd)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"--join", "10.0.0.1:7235", "--simulate-gpus", "1xL4", "--gossip-addr", "127.0.0.1:0"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "perfleet tls cert create --agent") || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("want an error naming the TLS files and --insecure, got %v", err)
	}
}

func TestLoopbackDialer(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "127.9.9.9:1": true, "[::1]:1": true, "localhost:1": true,
		"LOCALHOST": true, "[::ffff:127.0.0.1]:1": true, "10.0.0.1:1": false, "[2001:db8::1]:1": false, "example.com:1": false,
		"0.0.0.0:1": false, ":1": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
	if _, err := loopbackDialer(context.Background(), "10.0.0.1:7233"); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("the loopback dialer let 10.0.0.1 through: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := loopbackDialer(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestAgentConfigFileTLS(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(p, []byte("join: [10.0.0.1:7235]\nregion: us-east-1\nca_file: ca.pem\ncert_file: agent.pem\nkey_file: agent-key.pem\n"+
		"tls_min_version: tls12\ntls_domain: perfleet.example.com\ninsecure: true\n"), 0o600)
	f := &agentFlags{configFile: p}
	if err := loadAgentFile(rootCmd, f); err != nil {
		t.Fatal(err)
	}
	if f.caFile != "ca.pem" || f.certFile != "agent.pem" || f.keyFile != "agent-key.pem" || f.tlsMinVersion != "tls12" ||
		f.tlsDomain != "perfleet.example.com" || !f.insecure || f.region != "us-east-1" {
		t.Fatalf("config not applied: %+v", f)
	}
}
