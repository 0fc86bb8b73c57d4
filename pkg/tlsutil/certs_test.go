package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestIssueRoles(t *testing.T) {
	p := newPKI(t)
	srv := p.issue(t, RoleServer, func(o *CertOptions) {
		o.DNSNames = []string{"coord-1.internal", "localhost"}
		o.IPs = []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("127.0.0.1")}
	})
	c := srv.Cert
	if c.Subject.CommonName != "server.us-east-1.perfleet" {
		t.Errorf("CN %q", c.Subject.CommonName)
	}
	if want := []string{"server.us-east-1.perfleet", "localhost", "coord-1.internal"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNS names %v, want %v", c.DNSNames, want)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !c.IPAddresses[1].Equal(net.ParseIP("10.0.0.5")) {
		t.Errorf("IPs %v", c.IPAddresses)
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("server key usage %v", c.ExtKeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if n := len(c.SerialNumber.Bytes()); n != 16 {
		t.Errorf("serial is %d bytes, want 16", n)
	}
	if err := c.CheckSignatureFrom(p.ca.Cert); err != nil {
		t.Error(err)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d != DefaultCertDays*24*time.Hour {
		t.Errorf("lifetime %v", d)
	}

	for _, role := range []Role{RoleAgent, RoleClient} {
		c := p.issue(t, role, nil).Cert
		if want := []string{string(role) + ".us-east-1.perfleet"}; !slices.Equal(c.DNSNames, want) || len(c.IPAddresses) != 0 {
			t.Errorf("%s names %v %v, want %v only", role, c.DNSNames, c.IPAddresses, want)
		}
		if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Errorf("%s key usage %v, want client auth only", role, c.ExtKeyUsage)
		}
		id, err := IdentityFromCert(c)
		if err != nil || id.Role != role || id.Region != testRegion || id.Domain != "perfleet" || id.Serial != c.SerialNumber.Text(16) {
			t.Errorf("identity %+v, %v", id, err)
		}
	}
	if a, b := p.issue(t, RoleAgent, nil).Cert.SerialNumber, p.issue(t, RoleAgent, nil).Cert.SerialNumber; a.Cmp(b) == 0 {
		t.Error("two certificates share a serial")
	}
}

func TestIssueRefuses(t *testing.T) {
	p := newPKI(t)
	for name, o := range map[string]CertOptions{
		"unknown role":           {Role: "admin", Region: testRegion},
		"bad region":             {Role: RoleServer, Region: "US_EAST"},
		"dotted region":          {Role: RoleServer, Region: "us.east"},
		"bad domain":             {Role: RoleServer, Region: testRegion, Domain: "Perf Fleet"},
		"another role's name":    {Role: RoleAgent, Region: testRegion, DNSNames: []string{"server.us-east-1.perfleet"}},
		"negative days":          {Role: RoleServer, Region: testRegion, Days: -1},
		"outlives the CA":        {Role: RoleServer, Region: testRegion, Days: DefaultCADays + 1},
		"empty extra DNS name":   {Role: RoleServer, Region: testRegion, DNSNames: []string{""}},
		"client posing as agent": {Role: RoleClient, Region: "eu-west-1", DNSNames: []string{"agent.eu-west-1.perfleet"}},
	} {
		if _, err := p.ca.Issue(o); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
	if _, err := p.ca.Issue(CertOptions{Role: RoleServer, Region: testRegion, Days: DefaultCADays + 1}); !errors.Is(err, ErrOutlivesCA) {
		t.Errorf("outliving the CA: %v", err)
	}
}

func TestCAFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(CAOptions{Domain: "fleet.example.com", Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath, err := WriteCA(dir, "fleet.example.com", ca)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(certPath) != "fleet.example.com-ca.pem" || filepath.Base(keyPath) != "fleet.example.com-ca-key.pem" {
		t.Errorf("files %s %s", certPath, keyPath)
	}
	assertMode(t, certPath, CertFileMode)
	assertMode(t, keyPath, KeyFileMode)
	if _, _, err := WriteCA(dir, "fleet.example.com", ca); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteCA: %v, want fs.ErrExist", err)
	}
	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Cert.IsCA || !loaded.Cert.MaxPathLenZero {
		t.Error("loaded CA differs")
	}
	other, _ := NewCA(CAOptions{})
	if _, err := ParseCA(ca.CertPEM, other.KeyPEM); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("mismatched CA key: %v", err)
	}
	leaf, _ := ca.Issue(CertOptions{Role: RoleAgent, Region: "r1", Days: 1})
	if _, err := ParseCA(leaf.CertPEM, leaf.KeyPEM); !errors.Is(err, ErrNotCA) {
		t.Errorf("leaf as CA: %v", err)
	}
	if _, err := ParseCA([]byte("junk"), ca.KeyPEM); !errors.Is(err, ErrNoPEM) {
		t.Errorf("junk CA: %v", err)
	}
}

func TestWriteCertIndex(t *testing.T) {
	p := newPKI(t)
	for i, want := range []string{"us-east-1-server-perfleet-0", "us-east-1-server-perfleet-1", "us-east-1-server-perfleet-2"} {
		if i == 2 {
			// A stray key file alone also takes its index.
			os.WriteFile(filepath.Join(p.dir, want+"-key.pem"), nil, 0o600)
			want = "us-east-1-server-perfleet-3"
		}
		c, k := p.write(t, RoleServer, p.issue(t, RoleServer, nil))
		if c != filepath.Join(p.dir, want+".pem") || k != filepath.Join(p.dir, want+"-key.pem") {
			t.Errorf("write %d: %s %s, want %s", i, c, k, want)
		}
		assertMode(t, c, CertFileMode)
		assertMode(t, k, KeyFileMode)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}
