package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMutualTLSHandshake(t *testing.T) {
	p := newPKI(t)
	srv := p.reloader(t, RoleServer, nil)
	agent := p.reloader(t, RoleAgent, nil)
	addr, _ := serveTLS(t, srv.ServerConfig())

	line, cs, err := dialTLS(addr, agent.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := "agent.us-east-1.perfleet " + agent.Certificate().SerialNumber.Text(16)
	if line != want {
		t.Errorf("server saw %q, want %q", line, want)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("version %s, want TLS 1.3", tls.VersionName(cs.Version))
	}
	if got := cs.PeerCertificates[0].SerialNumber; got.Cmp(srv.Certificate().SerialNumber) != 0 {
		t.Errorf("server presented serial %x, want %x", got, srv.Certificate().SerialNumber)
	}
	if id := srv.Identity(); id.Role != RoleServer || id.Region != testRegion || id.Domain != DefaultDomain {
		t.Errorf("server identity %+v", id)
	}
}

func TestTLS12WhenAllowed(t *testing.T) {
	p := newPKI(t)
	v12 := func(o *Options) { o.MinVersion = tls.VersionTLS12 }
	srv := p.reloader(t, RoleServer, v12)
	client := p.reloader(t, RoleClient, v12)
	addr, _ := serveTLS(t, srv.ServerConfig())
	cfg := client.ClientConfig()
	cfg.MaxVersion = tls.VersionTLS12
	line, cs, err := dialTLS(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Version != tls.VersionTLS12 || !slices.Contains(CipherSuites, cs.CipherSuite) {
		t.Errorf("negotiated %s with %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
	}
	if line == "" || line[:len("client.us-east-1.perfleet")] != "client.us-east-1.perfleet" {
		t.Errorf("server saw %q", line)
	}
}

// TestRefused covers the handshakes that must fail and which side refuses.
func TestRefused(t *testing.T) {
	p := newPKI(t)
	foreign := newPKI(t)
	srv := p.reloader(t, RoleServer, nil)
	agent := p.reloader(t, RoleAgent, nil)
	serverName := RoleName(RoleServer, testRegion, "")

	// raw is a client that does not use a Reloader: it trusts our CA and
	// presents whatever certificate it has.
	raw := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: p.pool(), ServerName: serverName, Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	expired := keyPair(t, p.issue(t, RoleAgent, func(o *CertOptions) {
		o.NotBefore, o.Days = time.Now().Add(-72*time.Hour), 1
	}))
	foreignAgent := keyPair(t, foreign.issue(t, RoleAgent, nil))

	t.Run("no client certificate", func(t *testing.T) {
		addr, errs := serveTLS(t, srv.ServerConfig())
		if _, _, err := dialTLS(addr, raw()); err == nil {
			t.Fatal("connected without a client certificate")
		}
		if err := serverErr(t, errs); err == nil {
			t.Fatal("no server error")
		}
	})
	t.Run("foreign CA", func(t *testing.T) {
		addr, errs := serveTLS(t, srv.ServerConfig())
		// Go clients send only certificates from the CAs the server asks
		// for; an attacker sends its certificate anyway.
		cfg := raw()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignAgent, nil }
		if _, _, err := dialTLS(addr, cfg); err == nil {
			t.Fatal("connected with a certificate from another CA")
		}
		var uae x509.UnknownAuthorityError
		if err := serverErr(t, errs); !errors.As(err, &uae) {
			t.Fatalf("server error %v, want an unknown authority", err)
		}
	})
	t.Run("expired client certificate", func(t *testing.T) {
		addr, errs := serveTLS(t, srv.ServerConfig())
		if _, _, err := dialTLS(addr, raw(expired)); err == nil {
			t.Fatal("connected with an expired certificate")
		}
		var cie x509.CertificateInvalidError
		if err := serverErr(t, errs); !errors.As(err, &cie) || cie.Reason != x509.Expired {
			t.Fatalf("server error %v, want expired", err)
		}
	})
	t.Run("agent certificate posing as a server", func(t *testing.T) {
		impostor := &tls.Config{Certificates: []tls.Certificate{keyPair(t, p.issue(t, RoleAgent, nil))},
			ClientAuth: tls.RequireAnyClientCert}
		addr, _ := serveTLS(t, impostor)
		_, _, err := dialTLS(addr, agent.ClientConfig())
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("client error %v, want a hostname error", err)
		}
	})
	t.Run("server of another region", func(t *testing.T) {
		other := &tls.Config{Certificates: []tls.Certificate{keyPair(t, p.issue(t, RoleServer, func(o *CertOptions) { o.Region = "eu-west-1" }))},
			ClientAuth: tls.RequireAnyClientCert}
		addr, _ := serveTLS(t, other)
		if _, _, err := dialTLS(addr, agent.ClientConfig()); err == nil {
			t.Fatal("accepted server.eu-west-1.perfleet as server.us-east-1.perfleet")
		}
	})
	t.Run("server from a foreign CA", func(t *testing.T) {
		other := &tls.Config{Certificates: []tls.Certificate{keyPair(t, foreign.issue(t, RoleServer, nil))},
			ClientAuth: tls.RequireAnyClientCert}
		addr, _ := serveTLS(t, other)
		var uae x509.UnknownAuthorityError
		if _, _, err := dialTLS(addr, agent.ClientConfig()); !errors.As(err, &uae) {
			t.Fatalf("client error %v, want an unknown authority", err)
		}
	})
	t.Run("TLS 1.2 client when 1.3 is required", func(t *testing.T) {
		addr, errs := serveTLS(t, srv.ServerConfig())
		cfg := agent.ClientConfig()
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if _, _, err := dialTLS(addr, cfg); err == nil {
			t.Fatal("a TLS 1.2 client connected")
		}
		if err := serverErr(t, errs); err == nil {
			t.Fatal("no server error")
		}
		// The same client is fine where TLS 1.2 is allowed, so the version
		// was the reason.
		v12 := p.reloader(t, RoleServer, func(o *Options) { o.MinVersion = tls.VersionTLS12 })
		addr12, _ := serveTLS(t, v12.ServerConfig())
		if _, cs, err := dialTLS(addr12, cfg); err != nil || cs.Version != tls.VersionTLS12 {
			t.Fatalf("TLS 1.2 where allowed: %v", err)
		}
	})
	t.Run("role not allowed on this listener", func(t *testing.T) {
		raft := p.reloader(t, RoleServer, func(o *Options) { o.ClientRoles = []Role{RoleServer} })
		addr, errs := serveTLS(t, raft.ServerConfig())
		if _, _, err := dialTLS(addr, agent.ClientConfig()); err == nil {
			t.Fatal("an agent reached a servers-only listener")
		}
		if err := serverErr(t, errs); !errors.Is(err, ErrRoleNotAllowed) {
			t.Fatalf("server error %v, want ErrRoleNotAllowed", err)
		}
		if line, _, err := dialTLS(addr, srv.ClientConfig()); err != nil || line[:6] != "server" {
			t.Fatalf("a server was refused: %q %v", line, err)
		}
	})
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS13, "tls13": tls.VersionTLS13, "1.3": tls.VersionTLS13,
		"TLSv1.2": tls.VersionTLS12, "tls12": tls.VersionTLS12, "TLS1_2": tls.VersionTLS12} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for in, want := range map[string]error{"tls11": ErrVersionTooOld, "1.0": ErrVersionTooOld, "TLSv1.1": ErrVersionTooOld,
		"tls14": ErrUnknownVersion, "ssl3": ErrUnknownVersion} {
		if _, err := ParseVersion(in); !errors.Is(err, want) {
			t.Errorf("ParseVersion(%q) error %v, want %v", in, err, want)
		}
	}
	p := newPKI(t)
	c, k := p.write(t, RoleServer, p.issue(t, RoleServer, nil))
	_, err := NewReloader(Options{CAFile: p.caFile, CertFile: c, KeyFile: k, Region: testRegion, MinVersion: tls.VersionTLS11})
	if !errors.Is(err, ErrVersionTooOld) {
		t.Errorf("NewReloader with TLS 1.1: %v, want ErrVersionTooOld", err)
	}
}
