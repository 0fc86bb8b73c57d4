package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// runTLS runs 'perfleet tls ARGS...' in-process.
func runTLS(t *testing.T, a ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	g := &globals{out: &out, errOut: &out}
	cmd := newTLSCmd(g)
	cmd.SetArgs(a)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertFileMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), want)
	}
}

func TestTLSCreateCAAndCerts(t *testing.T) {
	dir := t.TempDir()
	out, err := runTLS(t, "ca", "create", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	caFile, caKey := filepath.Join(dir, "perfleet-ca.pem"), filepath.Join(dir, "perfleet-ca-key.pem")
	if !strings.Contains(out, "Saved "+caFile) {
		t.Errorf("output %q", out)
	}
	assertFileMode(t, caFile, 0o644)
	assertFileMode(t, caKey, 0o600)
	ca := readCert(t, caFile)
	if !ca.IsCA {
		t.Error("CA certificate is not a CA")
	}
	if _, err := runTLS(t, "ca", "create", "--dir", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second ca create: %v", err)
	}

	out, err = runTLS(t, "cert", "create", "--server", "--dir", dir, "--dns", "coord-1.example.com", "--ip", "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	srvFile := filepath.Join(dir, "us-east-1-server-perfleet-0.pem")
	srvKey := filepath.Join(dir, "us-east-1-server-perfleet-0-key.pem")
	if !strings.Contains(out, "Saved "+srvFile) || !strings.Contains(out, "Saved "+srvKey) {
		t.Errorf("output %q", out)
	}
	assertFileMode(t, srvFile, 0o644)
	assertFileMode(t, srvKey, 0o600)
	srv := readCert(t, srvFile)
	if want := []string{"server.us-east-1.perfleet", "localhost", "coord-1.example.com"}; !slices.Equal(srv.DNSNames, want) {
		t.Errorf("server DNS names %v, want %v", srv.DNSNames, want)
	}
	if len(srv.IPAddresses) != 2 || !srv.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !srv.IPAddresses[1].Equal(net.ParseIP("10.0.0.5")) {
		t.Errorf("server IPs %v", srv.IPAddresses)
	}
	if err := srv.CheckSignatureFrom(ca); err != nil {
		t.Error(err)
	}

	if _, err := runTLS(t, "cert", "create", "--server", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dir, "us-east-1-server-perfleet-1.pem")
	if c := readCert(t, second); c.SerialNumber.Cmp(srv.SerialNumber) == 0 {
		t.Error("the second certificate has the first one's serial")
	}
	assertFileMode(t, filepath.Join(dir, "us-east-1-server-perfleet-1-key.pem"), 0o600)

	if _, err := runTLS(t, "cert", "create", "--agent", "--region", "eu-west-1", "--days", "30", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	agent := readCert(t, filepath.Join(dir, "eu-west-1-agent-perfleet-0.pem"))
	if !slices.Equal(agent.DNSNames, []string{"agent.eu-west-1.perfleet"}) || len(agent.IPAddresses) != 0 {
		t.Errorf("agent names %v %v", agent.DNSNames, agent.IPAddresses)
	}
	if d := agent.NotAfter.Sub(agent.NotBefore).Hours(); d != 30*24 {
		t.Errorf("agent lifetime %vh", d)
	}

	// The files work as they are with the TLS layer.
	r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: caFile, CertFile: srvFile, KeyFile: srvKey,
		Region: "us-east-1", Role: tlsutil.RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	if r.Identity().String() != "server.us-east-1.perfleet" {
		t.Errorf("identity %v", r.Identity())
	}
}

func TestTLSCertCreateErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := runTLS(t, "ca", "create", "--dir", dir, "--domain", "fleet.example.com"); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "x.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir}, "exactly one of --server, --agent or --client"},
		{[]string{"--server", "--agent", "--dir", dir}, "exactly one of"},
		{[]string{"--server", "--dir", dir}, "--ca " + filepath.Join(dir, "perfleet-ca.pem") + ": no such file"},
		{[]string{"--server", "--dir", dir, "--ca", missing}, "--ca " + missing + ": no such file"},
		{[]string{"--server", "--dir", dir, "--domain", "fleet.example.com", "--key", missing}, "--key " + missing + ": no such file"},
		{[]string{"--client", "--dir", dir, "--domain", "fleet.example.com", "--ip", "10.0.0.999"}, `--ip "10.0.0.999": not an IP address`},
		{[]string{"--client", "--dir", dir, "--domain", "fleet.example.com", "--region", "US_EAST"}, "--region"},
		{[]string{"--agent", "--dir", dir, "--domain", "fleet.example.com", "--days", "0"}, "--days must be positive"},
		{[]string{"--agent", "--dir", dir, "--domain", "fleet.example.com", "--days", "4000"}, "--days 4000"},
		{[]string{"--agent", "--dir", dir, "--domain", "fleet.example.com", "--dns", "server.us-east-1.fleet.example.com"}, "--dns"},
		{[]string{"--agent", "--dir", filepath.Join(dir, "nope"), "--domain", "fleet.example.com"}, "--dir"},
	} {
		_, err := runTLS(t, append([]string{"cert", "create"}, tc.args...)...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
	// Nothing was written by the failures.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d files in the directory, want the 2 CA files", len(entries))
	}
}

func TestTLSHelp(t *testing.T) {
	out, err := runTLS(t, "cert", "create", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "--server", "--agent", "--client", "--region", "--dns", "--ip", "--ca", "--key", "mode 0600"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
