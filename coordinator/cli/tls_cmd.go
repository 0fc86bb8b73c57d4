package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// newTLSCmd is 'perfleet tls': a certificate authority and role
// certificates for mutual TLS, in the manner of 'consul tls'.
func newTLSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create a certificate authority and certificates for mutual TLS",
		Long: `Create the certificates perfleet needs for mutual TLS between coordinators,
agents and clients. Every certificate names a role in its common name and
first DNS name, and peers check it:

  server.<region>.<domain>   coordinators (also localhost and 127.0.0.1)
  agent.<region>.<domain>    agents
  client.<region>.<domain>   CLI and API clients

Keys are ECDSA P-256; key files are written with mode 0600. Keep the CA key
offline: only 'tls cert create' needs it.`,
		Example: `  perfleet tls ca create
  perfleet tls cert create --server --region us-east-1 --dns coord-1.example.com --ip 10.0.0.5
  perfleet tls cert create --agent --region us-east-1
  perfleet tls cert create --client`,
	}
	ca := &cobra.Command{Use: "ca", Short: "Create the certificate authority"}
	ca.AddCommand(newTLSCACreateCmd(g))
	cert := &cobra.Command{Use: "cert", Short: "Create server, agent and client certificates"}
	cert.AddCommand(newTLSCertCreateCmd(g))
	cmd.AddCommand(ca, cert)
	return cmd
}

func newTLSCACreateCmd(g *globals) *cobra.Command {
	var domain, dir string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a certificate authority: <domain>-ca.pem and <domain>-ca-key.pem",
		Long: `Create a self-signed certificate authority with an ECDSA P-256 key and write
<domain>-ca.pem (the certificate, to give every node as its CA file) and
<domain>-ca-key.pem (the private key, mode 0600) into --dir. Existing files
are never overwritten.`,
		Example: `  perfleet tls ca create
  perfleet tls ca create --domain perfleet.example.com --days 3650 --dir /etc/perfleet/tls`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tlsutil.ValidateDomain(domain); err != nil {
				return usageError{fmt.Errorf("--domain: %v", err)}
			}
			if days <= 0 {
				return usageError{fmt.Errorf("--days must be positive, got %d", days)}
			}
			if err := checkDir(dir); err != nil {
				return err
			}
			ca, err := tlsutil.NewCA(tlsutil.CAOptions{Domain: domain, Days: days})
			if err != nil {
				return err
			}
			certPath, keyPath, err := tlsutil.WriteCA(dir, domain, ca)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w; remove it or choose another --dir or --domain", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "==> Saved %s\n==> Saved %s\n", certPath, keyPath)
			fmt.Fprintf(g.out, "    %s, valid until %s\n", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format(time.DateOnly))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", tlsutil.DefaultDomain, "DNS domain of the role names (server.<region>.<domain>)")
	f.IntVar(&days, "days", tlsutil.DefaultCADays, "days the CA certificate is valid")
	f.StringVar(&dir, "dir", ".", "directory to write the files into")
	return cmd
}

// certFlags are the flags of 'tls cert create'.
type certFlags struct {
	server, agent, client bool
	region, domain, dir   string
	caFile, keyFile       string
	dns, ips              []string
	days                  int
	principal             string
}

func newTLSCertCreateCmd(g *globals) *cobra.Command {
	var fl certFlags
	cmd := &cobra.Command{
		Use:   "create (--server | --agent | --client)",
		Short: "Create a certificate for a server, an agent or a client, signed by the CA",
		Long: `Create an ECDSA P-256 key and a certificate for one role, signed by the CA,
and write <region>-<role>-<domain>-<n>.pem and <region>-<role>-<domain>-<n>-key.pem
(mode 0600) into --dir, where n is the first index whose files do not exist:
the first server certificate of a region is -0, the next -1.

The certificate's common name and first DNS name are <role>.<region>.<domain>.
Server certificates also name localhost and 127.0.0.1 and serve both ends of
a connection; agent and client certificates only authenticate clients. Add
the names and addresses nodes are dialed by with --dns and --ip. A client
certificate made with --principal ARN (a URI name urn:perfleet:principal:ARN)
authenticates as that principal once ACLs are on, with no token.

--ca and --key default to <domain>-ca.pem and <domain>-ca-key.pem in --dir,
as written by 'perfleet tls ca create'.`,
		Example: `  perfleet tls cert create --server
  perfleet tls cert create --server --region eu-west-1 --dns coord-1.example.com --ip 10.0.0.5
  perfleet tls cert create --agent --region eu-west-1 --days 90
  perfleet tls cert create --client --ca /etc/perfleet/perfleet-ca.pem --key /secure/perfleet-ca-key.pem
  perfleet tls cert create --client --principal arn:aws:iam::111111111111:user/alice`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return fl.run(g) },
	}
	f := cmd.Flags()
	f.BoolVar(&fl.server, "server", false, "create a coordinator certificate (server.<region>.<domain>)")
	f.BoolVar(&fl.agent, "agent", false, "create an agent certificate (agent.<region>.<domain>)")
	f.BoolVar(&fl.client, "client", false, "create a CLI/API client certificate (client.<region>.<domain>)")
	f.StringVar(&fl.region, "region", "us-east-1", "region the certificate's role name carries")
	f.StringVar(&fl.domain, "domain", tlsutil.DefaultDomain, "DNS domain of the role name; must match the CA's")
	f.StringArrayVar(&fl.dns, "dns", nil, "extra DNS name to add (repeatable)")
	f.StringArrayVar(&fl.ips, "ip", nil, "extra IP address to add (repeatable)")
	f.IntVar(&fl.days, "days", tlsutil.DefaultCertDays, "days the certificate is valid")
	f.StringVar(&fl.caFile, "ca", "", "CA certificate file (default <dir>/<domain>-ca.pem)")
	f.StringVar(&fl.keyFile, "key", "", "CA private key file (default <dir>/<domain>-ca-key.pem)")
	f.StringVar(&fl.dir, "dir", ".", "directory to write the files into")
	f.StringVar(&fl.principal, "principal", "", "with --client: the principal ARN the certificate authenticates as once ACLs are on")
	return cmd
}

func (fl *certFlags) run(g *globals) error {
	opts, err := fl.options()
	if err != nil {
		return err
	}
	if err := checkDir(fl.dir); err != nil {
		return err
	}
	caName, keyName := tlsutil.CAFileNames(fl.domain)
	if fl.caFile == "" {
		fl.caFile = filepath.Join(fl.dir, caName)
	}
	if fl.keyFile == "" {
		fl.keyFile = filepath.Join(fl.dir, keyName)
	}
	certPEM, err := readFlagFile("--ca", fl.caFile)
	if err != nil {
		return err
	}
	keyPEM, err := readFlagFile("--key", fl.keyFile)
	if err != nil {
		return err
	}
	ca, err := tlsutil.ParseCA(certPEM, keyPEM)
	if errors.Is(err, tlsutil.ErrKeyMismatch) {
		return usageError{fmt.Errorf("--key %s: not the private key of the CA in --ca %s", fl.keyFile, fl.caFile)}
	}
	if err != nil {
		return usageError{fmt.Errorf("--ca %s, --key %s: %v", fl.caFile, fl.keyFile, err)}
	}
	iss, err := ca.Issue(opts)
	switch {
	case errors.Is(err, tlsutil.ErrOutlivesCA):
		return usageError{fmt.Errorf("--days %d: %v", fl.days, err)}
	case errors.Is(err, tlsutil.ErrInvalidName):
		return usageError{fmt.Errorf("--dns: %v", err)}
	case err != nil:
		return err
	}
	certPath, keyPath, err := tlsutil.WriteCert(fl.dir, opts.Role, fl.region, fl.domain, iss)
	if err != nil {
		return err
	}
	c := iss.Cert
	ips := make([]string, len(c.IPAddresses))
	for i, ip := range c.IPAddresses {
		ips[i] = ip.String()
	}
	fmt.Fprintf(g.out, "==> Using %s and %s\n==> Saved %s\n==> Saved %s\n", fl.caFile, fl.keyFile, certPath, keyPath)
	fmt.Fprintf(g.out, "    common name %s, serial %x, valid until %s\n", c.Subject.CommonName, c.SerialNumber, c.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(g.out, "    DNS names: %s\n", strings.Join(c.DNSNames, ", "))
	if len(ips) > 0 {
		fmt.Fprintf(g.out, "    IP addresses: %s\n", strings.Join(ips, ", "))
	}
	return nil
}

// options checks the flags that need no file and turns them into
// certificate options.
func (fl *certFlags) options() (tlsutil.CertOptions, error) {
	var role tlsutil.Role
	n := 0
	for r, set := range map[tlsutil.Role]bool{tlsutil.RoleServer: fl.server, tlsutil.RoleAgent: fl.agent, tlsutil.RoleClient: fl.client} {
		if set {
			role, n = r, n+1
		}
	}
	if n != 1 {
		return tlsutil.CertOptions{}, usageError{errors.New("give exactly one of --server, --agent or --client")}
	}
	if err := tlsutil.ValidateRegion(fl.region); err != nil {
		return tlsutil.CertOptions{}, usageError{fmt.Errorf("--region: %v", err)}
	}
	if err := tlsutil.ValidateDomain(fl.domain); err != nil {
		return tlsutil.CertOptions{}, usageError{fmt.Errorf("--domain: %v", err)}
	}
	if fl.days <= 0 {
		return tlsutil.CertOptions{}, usageError{fmt.Errorf("--days must be positive, got %d", fl.days)}
	}
	opts := tlsutil.CertOptions{Role: role, Region: fl.region, Domain: fl.domain, Days: fl.days, Principal: fl.principal}
	if fl.principal != "" && role != tlsutil.RoleClient {
		return tlsutil.CertOptions{}, usageError{errors.New("--principal goes only with --client")}
	}
	for _, d := range fl.dns {
		if d == "" || strings.ContainsAny(d, " /:") {
			return tlsutil.CertOptions{}, usageError{fmt.Errorf("--dns %q: not a DNS name", d)}
		}
		opts.DNSNames = append(opts.DNSNames, d)
	}
	for _, s := range fl.ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return tlsutil.CertOptions{}, usageError{fmt.Errorf("--ip %q: not an IP address", s)}
		}
		opts.IPs = append(opts.IPs, ip)
	}
	return opts, nil
}

// readFlagFile reads the file a flag names, with the flag in any error.
func readFlagFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError{fmt.Errorf("%s %s: no such file (create a CA with 'perfleet tls ca create' or pass %s)", flag, path, flag)}
	case err != nil:
		return nil, usageError{fmt.Errorf("%s %s: %v", flag, path, err)}
	}
	return b, nil
}

// checkDir fails unless dir is an existing directory.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return usageError{fmt.Errorf("--dir %s: %v", dir, err)}
	}
	if !fi.IsDir() {
		return usageError{fmt.Errorf("--dir %s: not a directory", dir)}
	}
	return nil
}
