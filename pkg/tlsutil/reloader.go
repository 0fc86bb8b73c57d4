package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultPollInterval is how often a running Reloader checks its files for
// changes unless Options.PollInterval says otherwise.
const DefaultPollInterval = 10 * time.Second

// Errors for certificates a Reloader refuses.
var (
	// ErrExpired is a certificate past its NotAfter time.
	ErrExpired = errors.New("certificate has expired")
	// ErrNotYetValid is a certificate before its NotBefore time.
	ErrNotYetValid = errors.New("certificate is not valid yet")
	// ErrUntrusted is a certificate that does not chain to the CA file.
	ErrUntrusted = errors.New("certificate is not signed by the CA")
)

// Options configure a Reloader.
type Options struct {
	CAFile   string // PEM file of the CA certificate(s) that peers must chain to
	CertFile string // PEM file of this node's certificate (and any intermediates)
	KeyFile  string // PEM file of its private key

	Region string // region of the servers this node talks to (required)
	Domain string // role names' domain; DefaultDomain when empty
	// Role, when set, is the role this node's certificate must have, with
	// Region and Domain: a server refuses to start with an agent's certificate.
	Role Role

	MinVersion  uint16   // minimum TLS version; 0 is DefaultMinVersion, below 1.2 an error
	ClientRoles []Role   // roles a server accepts from clients; empty accepts any role from the CA
	NextProtos  []string // ALPN protocols (gRPC adds h2 itself)

	// PollInterval is how often Run compares the files' modification times
	// and sizes; 0 is DefaultPollInterval and a negative value turns polling
	// off, leaving SIGHUP and Reload.
	PollInterval time.Duration
	Logger       *slog.Logger // where reloads are logged; discarded when nil
}

// Reloader holds this node's current certificate and CA pool and serves them
// to TLS handshakes through callbacks, so that a reload affects only new
// handshakes: established connections keep their session and a handshake
// in progress finishes with the certificate it started with. A new set of
// files replaces the old only when the certificate parses, matches its key,
// is valid now, chains to the new CA and names the expected role; otherwise
// the rejection is logged and the old certificate stays in use.
type Reloader struct {
	opts       Options
	minVersion uint16
	serverName string // server.<region>.<domain>
	log        *slog.Logger
	cur        atomic.Pointer[loaded]

	mu   sync.Mutex // serializes reloads and guards seen
	seen [3]fileStamp
}

// loaded is one accepted set of files.
type loaded struct {
	cert   *tls.Certificate
	pool   *x509.CertPool
	id     Identity
	server *tls.Config // the per-handshake server configuration
}

// fileStamp is what polling compares: a file's modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
	err  bool
}

// NewReloader loads the files named by opts and fails if they are not
// acceptable. Call Run to follow changes.
func NewReloader(opts Options) (*Reloader, error) {
	if opts.CAFile == "" || opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("tlsutil: CAFile, CertFile and KeyFile are all required")
	}
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	if err := ValidateRegion(opts.Region); err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if err := ValidateDomain(opts.Domain); err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	minVersion, err := checkMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	r := &Reloader{opts: opts, minVersion: minVersion, serverName: RoleName(RoleServer, opts.Region, opts.Domain), log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = r.stamps()
	l, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	r.logLoaded(l)
	return r, nil
}

// Reload reads the files now. On success new handshakes use the new
// certificate and CA; on failure the error is logged and returned and the
// current ones stay in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = r.stamps()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	l, err := r.load()
	if err != nil {
		old := r.cur.Load()
		r.log.Error("tls: rejected new certificate files; keeping the current certificate",
			"cert_file", r.opts.CertFile, "ca_file", r.opts.CAFile, "err", err,
			"current_serial", old.id.Serial, "current_not_after", old.cert.Leaf.NotAfter)
		return err
	}
	r.cur.Store(l)
	r.logLoaded(l)
	return nil
}

// logLoaded logs a certificate taken into use, as a warning when less than
// a tenth of its lifetime is left.
func (r *Reloader) logLoaded(l *loaded) {
	leaf := l.cert.Leaf
	attrs := []any{"name", l.id.String(), "serial", l.id.Serial, "not_after", leaf.NotAfter, "cert_file", r.opts.CertFile}
	if left := time.Until(leaf.NotAfter); left < leaf.NotAfter.Sub(leaf.NotBefore)/10 {
		r.log.Warn("tls: loaded certificate expires soon; rotate it", append(attrs, "left", left.Round(time.Minute))...)
		return
	}
	r.log.Info("tls: loaded certificate", attrs...)
}

// Run follows the files until ctx ends: it reloads on SIGHUP and whenever
// a file's modification time or size changes (checked every PollInterval).
func (r *Reloader) Run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if r.opts.PollInterval > 0 {
		t := time.NewTicker(r.opts.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("tls: SIGHUP: reloading certificates", "cert_file", r.opts.CertFile)
			_ = r.Reload() // logged
		case <-tick:
			r.poll()
		}
	}
}

// poll reloads when a file changed since the last look. A rejected set is
// not retried until a file changes again.
func (r *Reloader) poll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.stamps()
	if now == r.seen {
		return
	}
	r.seen = now
	_ = r.reloadLocked() // logged
}

func (r *Reloader) stamps() [3]fileStamp {
	var s [3]fileStamp
	for i, name := range []string{r.opts.CAFile, r.opts.CertFile, r.opts.KeyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			s[i] = fileStamp{err: true}
			continue
		}
		s[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s
}

// load reads and checks the three files.
func (r *Reloader) load() (*loaded, error) {
	caPEM, err := os.ReadFile(r.opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tlsutil: CA file %s: %w", r.opts.CAFile, ErrNoPEM)
	}
	cert, err := loadKeyPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	now := time.Now()
	switch {
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("tlsutil: %s: %w (from %s)", r.opts.CertFile, ErrNotYetValid, leaf.NotBefore.Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("tlsutil: %s: %w (on %s)", r.opts.CertFile, ErrExpired, leaf.NotAfter.Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w %s: %v", r.opts.CertFile, ErrUntrusted, r.opts.CAFile, err)
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w", r.opts.CertFile, err)
	}
	if r.opts.Role != "" {
		if want := RoleName(r.opts.Role, r.opts.Region, r.opts.Domain); id.String() != want {
			return nil, fmt.Errorf("tlsutil: %s is a certificate for %s, want %s: %w", r.opts.CertFile, id, want, ErrRoleNotAllowed)
		}
	}
	return &loaded{cert: cert, pool: pool, id: id,
		server: newServerConfig(cert, pool, r.minVersion, r.opts.ClientRoles, r.opts.NextProtos)}, nil
}

// loadKeyPair reads a certificate chain and its key, telling a key that
// belongs to another certificate apart from a file that does not parse.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: key file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if leaf, lerr := firstCert(certPEM); lerr == nil {
			if key, kerr := parseAnyKey(keyPEM); kerr == nil && !samePublicKey(leaf, key) {
				return nil, fmt.Errorf("tlsutil: %s and %s: %w", certFile, keyFile, ErrKeyMismatch)
			}
		}
		return nil, fmt.Errorf("tlsutil: %s and %s: %w", certFile, keyFile, err)
	}
	return &pair, nil // X509KeyPair sets Leaf
}

// GetCertificate returns the current certificate; it is the
// tls.Config.GetCertificate callback for servers that do not need mTLS.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load().cert, nil
}

// GetClientCertificate returns the current certificate; it is the
// tls.Config.GetClientCertificate callback of ClientConfig.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.cur.Load().cert, nil
}

// GetConfigForClient returns the mTLS server configuration of the current
// certificate and CA pool; it is the tls.Config.GetConfigForClient callback
// of ServerConfig.
func (r *Reloader) GetConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return r.cur.Load().server, nil
}

// ServerConfig is a mutual-TLS server configuration that follows reloads:
// clients must present a certificate that chains to the current CA (and
// has one of Options.ClientRoles when that is set). Use PeerIdentity or
// PeerIdentityFromContext to learn who the client is.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         r.minVersion,
		CipherSuites:       slices.Clone(CipherSuites),
		NextProtos:         slices.Clone(r.opts.NextProtos),
		GetConfigForClient: r.GetConfigForClient,
	}
}

// ClientConfig is a mutual-TLS client configuration that follows reloads:
// it presents the current certificate and accepts only a server whose
// certificate chains to the current CA and is named server.<region>.<domain>,
// whatever address was dialed, so that an agent or client certificate cannot
// pose as a server.
func (r *Reloader) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:           r.minVersion,
		CipherSuites:         slices.Clone(CipherSuites),
		NextProtos:           slices.Clone(r.opts.NextProtos),
		ServerName:           r.serverName,
		GetClientCertificate: r.GetClientCertificate,
		// The chain, the name and the role are verified in VerifyConnection
		// against the CA pool current at handshake time.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, r.cur.Load().pool, r.serverName, time.Now())
		},
	}
}

// Certificate is the leaf certificate in use now.
func (r *Reloader) Certificate() *x509.Certificate { return r.cur.Load().cert.Leaf }

// Identity is the identity of the certificate in use now.
func (r *Reloader) Identity() Identity { return r.cur.Load().id }
