package tlsutil

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const testRegion = "us-east-1"

// testPKI is a CA written into a temporary directory.
type testPKI struct {
	dir    string
	ca     *CA
	caFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := WriteCA(dir, DefaultDomain, ca)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{dir: dir, ca: ca, caFile: caFile}
}

// issue creates a certificate of role in testRegion; mod may adjust the
// options.
func (p *testPKI) issue(t *testing.T, role Role, mod func(*CertOptions)) *Issued {
	t.Helper()
	o := CertOptions{Role: role, Region: testRegion}
	if mod != nil {
		mod(&o)
	}
	iss, err := p.ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// write stores an issued certificate under the next free index.
func (p *testPKI) write(t *testing.T, role Role, iss *Issued) (certFile, keyFile string) {
	t.Helper()
	c, k, err := WriteCert(p.dir, role, testRegion, DefaultDomain, iss)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// reloader issues a certificate of role and loads it; mod may adjust the
// reloader's options.
func (p *testPKI) reloader(t *testing.T, role Role, mod func(*Options)) *Reloader {
	t.Helper()
	c, k := p.write(t, role, p.issue(t, role, nil))
	o := Options{CAFile: p.caFile, CertFile: c, KeyFile: k, Region: testRegion, Role: role}
	if mod != nil {
		mod(&o)
	}
	r, err := NewReloader(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pool is a CA pool holding just this PKI's CA.
func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

func keyPair(t *testing.T, iss *Issued) tls.Certificate {
	t.Helper()
	kp, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// serveTLS accepts TLS connections on 127.0.0.1; after each handshake it
// writes the verified client's identity as one line and closes. Handshake
// errors go to the returned channel.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, errs <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					select {
					case ch <- err:
					default:
					}
					return
				}
				id, err := PeerIdentity(tc.ConnectionState())
				if err != nil {
					fmt.Fprintf(tc, "no identity: %v\n", err)
					return
				}
				fmt.Fprintf(tc, "%s %s\n", id, tc.ConnectionState().PeerCertificates[0].SerialNumber.Text(16))
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// dialTLS connects, completes the handshake and reads the server's line,
// which is where a TLS 1.3 client learns that its certificate was refused.
func dialTLS(addr string, cfg *tls.Config) (string, tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", c.ConnectionState(), err
	}
	return strings.TrimSpace(line), c.ConnectionState(), nil
}

// serverErr waits for the server's handshake error.
func serverErr(t *testing.T, errs <-chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the server reported no handshake error")
		return nil
	}
}

// writeInPlace overwrites a certificate's files the way a careless tool
// would: truncate and write, certificate first, with a pause between.
func writeInPlace(t *testing.T, certFile, keyFile string, iss *Issued, pause time.Duration) {
	t.Helper()
	if err := os.WriteFile(certFile, iss.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if err := os.WriteFile(keyFile, iss.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
