package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// DefaultDomain is the DNS domain that role names end in unless --domain
// says otherwise.
const DefaultDomain = "perfleet"

// Role is what a certificate lets its holder be: a coordinator server, an
// agent or a CLI/API client. It is the first label of the certificate's
// role name, <role>.<region>.<domain>.
type Role string

// The roles a certificate can name.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
	RoleClient Role = "client"
)

// Roles lists every role in a stable order.
var Roles = []Role{RoleServer, RoleAgent, RoleClient}

// Sentinel errors; the functions of this package wrap them with %w.
var (
	// ErrInvalidName is a region, domain or role that cannot form a DNS name.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoIdentity is a certificate that names no role (<role>.<region>.<domain>).
	ErrNoIdentity = errors.New("certificate names no perfleet role")
	// ErrNotVerified is a connection whose peer certificate was not verified
	// against a CA, so it cannot be trusted for authorization.
	ErrNotVerified = errors.New("peer certificate not verified")
	// ErrRoleNotAllowed is a verified peer whose role may not use this listener
	// or is not the role expected of a server.
	ErrRoleNotAllowed = errors.New("peer role not allowed")
)

var (
	labelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// ParseRole turns "server", "agent" or "client" into a Role.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: role %q: must be server, agent or client", ErrInvalidName, s)
}

// ValidateRegion checks that a region is one lowercase DNS label such as
// us-east-1.
func ValidateRegion(region string) error {
	if !labelRE.MatchString(region) {
		return fmt.Errorf("%w: region %q: must be one DNS label of lowercase letters, digits and inner hyphens (like us-east-1)", ErrInvalidName, region)
	}
	return nil
}

// ValidateDomain checks that a domain is a lowercase DNS name such as
// perfleet or perfleet.example.com.
func ValidateDomain(domain string) error {
	if len(domain) > 200 || !domainRE.MatchString(domain) {
		return fmt.Errorf("%w: domain %q: must be a lowercase DNS name (like perfleet or perfleet.example.com)", ErrInvalidName, domain)
	}
	return nil
}

// RoleName is the DNS name a certificate of role in region carries:
// <role>.<region>.<domain>, for example server.us-east-1.perfleet. An empty
// domain means DefaultDomain.
func RoleName(role Role, region, domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return string(role) + "." + region + "." + domain
}

// Identity is who a perfleet certificate says its holder is. Authorization
// maps it to a principal.
type Identity struct {
	Role       Role   // server, agent or client
	Region     string // the region label of the role name
	Domain     string // the domain of the role name
	CommonName string // the subject common name, equal to the role name
	Serial     string // the certificate serial number in lowercase hex
	// Principal is the principal ARN a client certificate names in its
	// urn:perfleet:principal:<arn> URI SAN, or "".
	Principal string
}

// PrincipalURNPrefix starts the opaque part of the URI SAN that maps a
// client certificate to a principal: urn:perfleet:principal:<arn>.
const PrincipalURNPrefix = "perfleet:principal:"

// certPrincipal returns the principal ARN a certificate names, or "".
func certPrincipal(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if u.Scheme == "urn" && strings.HasPrefix(u.Opaque, PrincipalURNPrefix) {
			return strings.TrimPrefix(u.Opaque, PrincipalURNPrefix)
		}
	}
	return ""
}

// String is the role name, <role>.<region>.<domain>.
func (id Identity) String() string { return RoleName(id.Role, id.Region, id.Domain) }

// parseRoleName splits <role>.<region>.<domain>; ok is false for any other
// name.
func parseRoleName(name string) (role Role, region, domain string, ok bool) {
	parts := strings.SplitN(name, ".", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	r, err := ParseRole(parts[0])
	if err != nil || ValidateRegion(parts[1]) != nil || ValidateDomain(parts[2]) != nil {
		return "", "", "", false
	}
	return r, parts[1], parts[2], true
}

// IdentityFromCert reads the identity of a certificate issued by this
// package: its common name must be a role name that is also one of its DNS
// names. It does not verify the certificate; see PeerIdentity.
func IdentityFromCert(cert *x509.Certificate) (Identity, error) {
	cn := cert.Subject.CommonName
	role, region, domain, ok := parseRoleName(cn)
	if !ok {
		return Identity{}, fmt.Errorf("%w: common name %q is not <role>.<region>.<domain>", ErrNoIdentity, cn)
	}
	for _, n := range cert.DNSNames {
		if n == cn {
			id := Identity{Role: role, Region: region, Domain: domain, CommonName: cn, Serial: cert.SerialNumber.Text(16)}
			if role == RoleClient {
				id.Principal = certPrincipal(cert)
			}
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("%w: common name %q is not among the DNS names %v", ErrNoIdentity, cn, cert.DNSNames)
}

// PeerIdentity returns the identity of the peer of a connection whose
// certificate chain was verified, as on a server built with
// Reloader.ServerConfig, which requires and verifies client certificates.
// It fails with ErrNotVerified when there is no verified chain.
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNotVerified
	}
	return IdentityFromCert(cs.VerifiedChains[0][0])
}

// PeerIdentityFromContext is PeerIdentity for the caller of a gRPC handler
// on a server using TLS transport credentials.
func PeerIdentityFromContext(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, fmt.Errorf("%w: no peer in context", ErrNotVerified)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, fmt.Errorf("%w: connection is not TLS", ErrNotVerified)
	}
	return PeerIdentity(info.State)
}
