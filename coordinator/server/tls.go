package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// setupTLS loads the node's certificate when TLS is configured. Servers
// accept any role from the CA on the API (clients, agents and servers call
// it; handlers check roles where it matters) and only servers on Raft.
func (s *Server) setupTLS() error {
	if !s.cfg.TLSEnabled() {
		return nil
	}
	minV, err := tlsutil.ParseVersion(s.cfg.TLSMinVersion)
	if err != nil {
		return fmt.Errorf("tls_min_version: %w", err)
	}
	r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: s.cfg.TLSCAFile, CertFile: s.cfg.TLSCertFile, KeyFile: s.cfg.TLSKeyFile,
		Region: s.cfg.Region, Domain: s.cfg.TLSDomain, Role: tlsutil.RoleServer, MinVersion: minV, Logger: s.log.With("component", "tls")})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	s.tls = r
	return nil
}

// grpcCreds is the API listener's server option: mutual TLS, or none.
func (s *Server) grpcCreds() []grpc.ServerOption {
	if s.tls == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(s.tls.ServerConfig()))}
}

// peerCreds are the credentials a server dials other servers with.
func (s *Server) peerCreds() credentials.TransportCredentials {
	if s.tls == nil {
		return nil
	}
	return credentials.NewTLS(s.tls.ClientConfig())
}

// gatewayListener wraps the JSON gateway's listener in TLS with the server
// certificate; AWS SDKs authenticate with SigV4, not client certificates.
func (s *Server) gatewayListener(l net.Listener) net.Listener {
	if s.tls == nil {
		return l
	}
	base := s.tls.ServerConfig()
	return tls.NewListener(l, &tls.Config{
		MinVersion:     base.MinVersion,
		CipherSuites:   slices.Clone(tlsutil.CipherSuites),
		GetCertificate: s.tls.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	})
}

// ReloadTLS re-reads the certificate files (SIGHUP). New connections use the
// new certificate; open ones keep theirs. It is a no-op without TLS.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}
