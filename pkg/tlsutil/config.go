// Package tlsutil is perfleet's TLS layer: certificate authorities and
// role certificates (server.<region>.perfleet, agent.<region>.perfleet,
// client.<region>.perfleet), mutual-TLS server and client configurations
// that check those roles, the identity of a verified peer for authorization,
// and a Reloader that rotates certificates from disk without dropping a
// connection or failing a handshake.
//
// TLS 1.3 is the default minimum version; TLS 1.2 may be allowed, with
// AEAD/ECDHE cipher suites only; anything older is refused.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultMinVersion is the minimum TLS version unless configured otherwise.
const DefaultMinVersion = tls.VersionTLS13

// Version errors.
var (
	// ErrVersionTooOld is a minimum version below TLS 1.2.
	ErrVersionTooOld = errors.New("TLS versions below 1.2 are not allowed")
	// ErrUnknownVersion is a version string that names no TLS version.
	ErrUnknownVersion = errors.New("unknown TLS version")
)

// CipherSuites are the TLS 1.2 cipher suites perfleet allows: ECDHE key
// exchange with AES-GCM or ChaCha20-Poly1305. TLS 1.3 suites are not
// configurable in Go and are all modern.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ParseVersion reads a minimum TLS version: "tls13", "1.3", "TLSv1.3" (and
// the same for 1.2). The empty string means DefaultMinVersion. TLS 1.0 and
// 1.1 fail with ErrVersionTooOld, anything else with ErrUnknownVersion.
func ParseVersion(s string) (uint16, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimPrefix(strings.TrimPrefix(v, "tlsv"), "tls")
	v = strings.ReplaceAll(strings.ReplaceAll(v, ".", ""), "_", "")
	switch v {
	case "":
		return DefaultMinVersion, nil
	case "13":
		return tls.VersionTLS13, nil
	case "12":
		return tls.VersionTLS12, nil
	case "10", "11":
		return 0, fmt.Errorf("tlsutil: minimum TLS version %q: %w; use tls12 or tls13", s, ErrVersionTooOld)
	}
	return 0, fmt.Errorf("tlsutil: minimum TLS version %q: %w; use tls12 or tls13", s, ErrUnknownVersion)
}

// checkMinVersion applies the default and refuses versions below 1.2.
func checkMinVersion(v uint16) (uint16, error) {
	switch {
	case v == 0:
		return DefaultMinVersion, nil
	case v < tls.VersionTLS12:
		return 0, fmt.Errorf("tlsutil: minimum TLS version %s: %w", tls.VersionName(v), ErrVersionTooOld)
	case v > tls.VersionTLS13:
		return 0, fmt.Errorf("tlsutil: minimum TLS version %s: %w", tls.VersionName(v), ErrUnknownVersion)
	}
	return v, nil
}

// newServerConfig is the mTLS server configuration for one loaded key pair
// and CA pool: client certificates are required and verified against pool,
// and when roles is not empty the client's role must be one of them.
// Session resumption is off, so a client certificate is checked on every
// connection.
func newServerConfig(cert *tls.Certificate, pool *x509.CertPool, minVersion uint16, roles []Role, nextProtos []string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: slices.Clone(CipherSuites),
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   slices.Clone(nextProtos),
		// Every connection is verified in full against the CA pool of the
		// moment: no resumed session outlives a CA rotation.
		SessionTicketsDisabled: true,
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := PeerIdentity(cs)
		if err != nil {
			return fmt.Errorf("tlsutil: client certificate: %w", err)
		}
		if len(roles) > 0 && !slices.Contains(roles, id.Role) {
			return fmt.Errorf("tlsutil: client %s: %w here (allowed: %v)", id, ErrRoleNotAllowed, roles)
		}
		return nil
	}
	return cfg
}

// verifyServer checks a server's certificate chain against the current CA
// pool and requires the server role name (server.<region>.<domain>). It is
// the whole of the client-side verification: the standard verification is
// turned off so that the CA pool can rotate and so that gRPC, which sets
// ServerName to the dialed address, cannot weaken the name check.
func verifyServer(cs tls.ConnectionState, pool *x509.CertPool, serverName string, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("tlsutil: server presented no certificate: %w", ErrNotVerified)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return fmt.Errorf("tlsutil: server certificate: %w", err)
	}
	if id.String() != serverName {
		return fmt.Errorf("tlsutil: server certificate is %s, want %s: %w", id, serverName, ErrRoleNotAllowed)
	}
	return nil
}
