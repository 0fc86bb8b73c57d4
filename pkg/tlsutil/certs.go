package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Default lifetimes, as with consul tls.
const (
	DefaultCADays   = 1825
	DefaultCertDays = 365
)

// clockSkew back-dates NotBefore so that peers whose clocks run a little
// behind accept a certificate at once.
const clockSkew = time.Minute

// More sentinel errors.
var (
	// ErrNoPEM is a file holding no PEM block of the expected type.
	ErrNoPEM = errors.New("no PEM data")
	// ErrKeyMismatch is a private key that does not belong to the certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrNotCA is a CA file whose certificate is not a CA certificate.
	ErrNotCA = errors.New("not a CA certificate")
	// ErrOutlivesCA is a certificate that would remain valid after its CA expires.
	ErrOutlivesCA = errors.New("certificate would outlive its CA")
)

// CA is a certificate authority that issues perfleet certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte // Cert, PEM-encoded
	KeyPEM  []byte // Key, PEM-encoded (SEC 1 "EC PRIVATE KEY")
}

// CAOptions configure NewCA.
type CAOptions struct {
	Domain    string    // role names' domain; DefaultDomain when empty
	Days      int       // lifetime; DefaultCADays when 0
	NotBefore time.Time // start of validity; now minus a minute when zero
}

// NewCA creates a self-signed ECDSA P-256 certificate authority.
func NewCA(opts CAOptions) (*CA, error) {
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	if err := ValidateDomain(opts.Domain); err != nil {
		return nil, err
	}
	notBefore, notAfter, err := validity(opts.NotBefore, opts.Days, DefaultCADays)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s CA %x", opts.Domain, serial.Bytes()[:4])},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: sign CA certificate: %w", err)
	}
	return newCA(der, key)
}

func newCA(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// ParseCA reads a CA from PEM: the first certificate of certPEM and an EC
// private key (SEC 1 or PKCS #8) that must match it.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := firstCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %q: %w", cert.Subject.CommonName, ErrNotCA)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !samePublicKey(cert, key) {
		return nil, fmt.Errorf("CA key: %w", ErrKeyMismatch)
	}
	return newCA(cert.Raw, key)
}

// LoadCA reads a CA certificate file and its key file; see ParseCA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return ParseCA(certPEM, keyPEM)
}

// CertOptions describe a certificate for Issue.
type CertOptions struct {
	Role      Role      // server, agent or client (required)
	Region    string    // region label of the role name (required)
	Domain    string    // role names' domain; DefaultDomain when empty
	DNSNames  []string  // extra DNS subject alternative names
	IPs       []net.IP  // extra IP subject alternative names
	Days      int       // lifetime; DefaultCertDays when 0
	NotBefore time.Time // start of validity; now minus a minute when zero
	// Principal is the ARN of the perfleet principal a client certificate
	// authenticates as, written as the URI SAN urn:perfleet:principal:<arn>;
	// only for client certificates.
	Principal string
}

// Issued is a certificate and its new private key.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte // Cert, PEM-encoded
	KeyPEM  []byte // the private key, PEM-encoded (SEC 1 "EC PRIVATE KEY")
}

// Issue creates an ECDSA P-256 key and a certificate for it signed by ca.
// The common name and first DNS name are the role name
// <role>.<region>.<domain>. Server certificates also name localhost and
// 127.0.0.1 and may be used by both ends of a connection (servers dial each
// other for Raft); agent and client certificates are client-only. Extra DNS
// names may not be another role's name.
func (ca *CA) Issue(opts CertOptions) (*Issued, error) {
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	if _, err := ParseRole(string(opts.Role)); err != nil {
		return nil, err
	}
	if err := ValidateRegion(opts.Region); err != nil {
		return nil, err
	}
	if err := ValidateDomain(opts.Domain); err != nil {
		return nil, err
	}
	name := RoleName(opts.Role, opts.Region, opts.Domain)
	dns, ips := []string{name}, []net.IP(nil)
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if opts.Role == RoleServer {
		dns = append(dns, "localhost")
		ips = append(ips, net.IPv4(127, 0, 0, 1))
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	for _, d := range opts.DNSNames {
		if d == "" {
			return nil, fmt.Errorf("%w: empty DNS name", ErrInvalidName)
		}
		if r, _, _, ok := parseRoleName(d); ok && r != opts.Role {
			return nil, fmt.Errorf("%w: DNS name %q would let a %s certificate act as a %s", ErrInvalidName, d, opts.Role, r)
		}
		dns = appendNew(dns, d)
	}
	for _, ip := range opts.IPs {
		if !containsIP(ips, ip) {
			ips = append(ips, ip)
		}
	}
	var uris []*url.URL
	if opts.Principal != "" {
		if opts.Role != RoleClient {
			return nil, fmt.Errorf("%w: only client certificates name a principal, not %s certificates", ErrInvalidName, opts.Role)
		}
		if !strings.HasPrefix(opts.Principal, "arn:") || strings.ContainsAny(opts.Principal, " \t\n") {
			return nil, fmt.Errorf("%w: principal %q must be an ARN such as arn:aws:iam::123456789012:user/alice", ErrInvalidName, opts.Principal)
		}
		uris = append(uris, &url.URL{Scheme: "urn", Opaque: PrincipalURNPrefix + opts.Principal})
	}
	notBefore, notAfter, err := validity(opts.NotBefore, opts.Days, DefaultCertDays)
	if err != nil {
		return nil, err
	}
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("tlsutil: %w: the CA expires %s, the certificate %s; issue it for fewer days or create a new CA",
			ErrOutlivesCA, ca.Cert.NotAfter.Format(time.DateOnly), notAfter.Format(time.DateOnly))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// validity turns a start and a number of days into NotBefore and NotAfter.
func validity(notBefore time.Time, days, defaultDays int) (time.Time, time.Time, error) {
	if days == 0 {
		days = defaultDays
	}
	if days < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("tlsutil: days must be positive, got %d", days)
	}
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-clockSkew)
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	return notBefore, notBefore.Add(time.Duration(days) * 24 * time.Hour), nil
}

// randomSerial is a positive random 128-bit serial number.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("tlsutil: serial number: %w", err)
	}
	b[0] &= 0x7f // positive in DER without a padding byte
	b[0] |= 0x40 // a full 16 bytes, never zero
	return new(big.Int).SetBytes(b), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseECKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	k, err := parseAnyKey(keyPEM)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an ECDSA key", k)
	}
	return ec, nil
}

// parseAnyKey reads the first private key block: SEC 1, PKCS #1 or PKCS #8.
func parseAnyKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("private key: %w", ErrNoPEM)
		}
		switch block.Type {
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
			return nil, fmt.Errorf("private key of type %T cannot sign", k)
		}
	}
}

// firstCert parses the first certificate block of certPEM.
func firstCert(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("certificate: %w", ErrNoPEM)
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// samePublicKey reports whether key belongs to cert.
func samePublicKey(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func containsIP(list []net.IP, ip net.IP) bool {
	for _, x := range list {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}
