package tlsutil

import (
	"context"
	"errors"
	"math/big"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// grpcHealthServer serves the standard health service over TLS from r.
func grpcHealthServer(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(r.ServerConfig())))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// check calls Health.Check on conn and returns the serial of the server's
// certificate on that connection.
func check(conn *grpc.ClientConn) (*big.Int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber, nil
}

// TestRotationUnderLoad replaces the server's certificate files in place
// while an agent keeps opening new connections: no call may fail, new
// connections move to the new serial, and an established connection keeps
// working throughout.
func TestRotationUnderLoad(t *testing.T) {
	p := newPKI(t)
	var logs logBuffer
	c, k := p.write(t, RoleServer, p.issue(t, RoleServer, nil))
	srv, err := NewReloader(Options{CAFile: p.caFile, CertFile: c, KeyFile: k, Region: testRegion, Role: RoleServer,
		PollInterval: 5 * time.Millisecond, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	addr := grpcHealthServer(t, srv)
	creds := credentials.NewTLS(p.reloader(t, RoleAgent, nil).ClientConfig())
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	oldSerial := srv.Certificate().SerialNumber
	longLived := dial()
	defer longLived.Close()
	if _, err := check(longLived); err != nil {
		t.Fatal(err)
	}

	next := p.issue(t, RoleServer, nil)
	const maxCalls, afterRotation = 500, 20
	var (
		mu                 sync.Mutex
		failures           []error
		calls, newSeen     int
		oldAfterNew        int
		warm               = make(chan struct{})
		warmOnce           sync.Once
		longLivedFailures  int
		longLivedNewSerial bool
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < maxCalls && newSeen < afterRotation; i++ {
			conn := dial()
			serial, err := check(conn)
			conn.Close()
			ls, lerr := check(longLived)
			mu.Lock()
			calls++
			switch {
			case err != nil:
				failures = append(failures, err)
			case serial.Cmp(next.Cert.SerialNumber) == 0:
				newSeen++
			case newSeen > 0:
				oldAfterNew++
			}
			if lerr != nil {
				longLivedFailures++
			} else if ls.Cmp(oldSerial) != 0 {
				longLivedNewSerial = true
			}
			mu.Unlock()
			if i == 5 {
				warmOnce.Do(func() { close(warm) })
			}
		}
		warmOnce.Do(func() { close(warm) })
	}()
	<-warm
	// A window in which the new certificate sits beside the old key: the
	// reloader must refuse that pair and keep serving the old one.
	writeInPlace(t, c, k, next, 100*time.Millisecond)
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d calls, %d on the new certificate, %d half-written sets refused", calls, newSeen,
		strings.Count(logs.String(), "rejected"))
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed during rotation, first: %v", len(failures), calls, failures[0])
	}
	if newSeen < afterRotation {
		t.Fatalf("new serial seen on %d of %d calls; reloader log:\n%s", newSeen, calls, logs.String())
	}
	if oldAfterNew > 0 {
		t.Errorf("%d calls got the old certificate after the new one was in use", oldAfterNew)
	}
	if longLivedFailures > 0 || longLivedNewSerial {
		t.Errorf("established connection: %d failures, renegotiated=%v", longLivedFailures, longLivedNewSerial)
	}
	if srv.Certificate().SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		t.Errorf("reloader holds serial %x, want %x", srv.Certificate().SerialNumber, next.Cert.SerialNumber)
	}
}

// TestBadReplacementKeepsOld tries each kind of unacceptable new file.
func TestBadReplacementKeepsOld(t *testing.T) {
	p := newPKI(t)
	foreign := newPKI(t)
	expired := p.issue(t, RoleServer, func(o *CertOptions) { o.NotBefore, o.Days = time.Now().Add(-72*time.Hour), 1 })
	foreignCert := foreign.issue(t, RoleServer, nil)
	agentCert := p.issue(t, RoleAgent, nil)
	type badFiles struct {
		cert, key []byte // nil keeps the current file
		want      error  // nil: any error
	}
	cases := map[string]badFiles{
		"corrupt certificate":        {cert: []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")},
		"empty key":                  {key: []byte{}},
		"key of another certificate": {cert: p.issue(t, RoleServer, nil).CertPEM, want: ErrKeyMismatch},
		"expired":                    {cert: expired.CertPEM, key: expired.KeyPEM, want: ErrExpired},
		"foreign CA":                 {cert: foreignCert.CertPEM, key: foreignCert.KeyPEM, want: ErrUntrusted},
		"agent certificate":          {cert: agentCert.CertPEM, key: agentCert.KeyPEM, want: ErrRoleNotAllowed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var logs logBuffer
			srv := p.reloader(t, RoleServer, func(o *Options) { o.Logger = logs.logger() })
			old := srv.Certificate().SerialNumber
			if tc.cert != nil {
				os.WriteFile(srv.opts.CertFile, tc.cert, 0o644)
			}
			if tc.key != nil {
				os.WriteFile(srv.opts.KeyFile, tc.key, 0o600)
			}
			err := srv.Reload()
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Reload: %v, want %v", err, tc.want)
			}
			if !strings.Contains(logs.String(), "keeping the current certificate") {
				t.Errorf("no log line for the rejection: %q", logs.String())
			}
			if srv.Certificate().SerialNumber.Cmp(old) != 0 {
				t.Fatal("the old certificate was replaced")
			}
			agent := p.reloader(t, RoleAgent, nil)
			addr, _ := serveTLS(t, srv.ServerConfig())
			if _, cs, err := dialTLS(addr, agent.ClientConfig()); err != nil || cs.PeerCertificates[0].SerialNumber.Cmp(old) != 0 {
				t.Fatalf("handshake after a rejected reload: %v", err)
			}
		})
	}
}

// TestPollingRejectsCorruptFile corrupts the certificate file under a
// running reloader and then repairs it.
func TestPollingRejectsCorruptFile(t *testing.T) {
	p := newPKI(t)
	var logs logBuffer
	srv := p.reloader(t, RoleServer, func(o *Options) { o.PollInterval, o.Logger = 5*time.Millisecond, logs.logger() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	old := srv.Certificate().SerialNumber
	if err := os.WriteFile(srv.opts.CertFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a rejection in the log", func() bool { return strings.Contains(logs.String(), "rejected") })
	if srv.Certificate().SerialNumber.Cmp(old) != 0 {
		t.Fatal("a corrupt file replaced the certificate")
	}
	next := p.issue(t, RoleServer, nil)
	writeInPlace(t, srv.opts.CertFile, srv.opts.KeyFile, next, 0)
	eventually(t, "the repaired certificate", func() bool { return srv.Certificate().SerialNumber.Cmp(next.Cert.SerialNumber) == 0 })
}

func TestSIGHUPReloads(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGHUP on windows")
	}
	// Catch SIGHUP here too so that a signal sent before Run subscribes
	// cannot end the test binary.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	p := newPKI(t)
	srv := p.reloader(t, RoleServer, func(o *Options) { o.PollInterval = -1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	next := p.issue(t, RoleServer, nil)
	writeInPlace(t, srv.opts.CertFile, srv.opts.KeyFile, next, 0)
	self, _ := os.FindProcess(os.Getpid())
	eventually(t, "a reload on SIGHUP", func() bool {
		self.Signal(syscall.SIGHUP)
		time.Sleep(20 * time.Millisecond)
		return srv.Certificate().SerialNumber.Cmp(next.Cert.SerialNumber) == 0
	})
}
