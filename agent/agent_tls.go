package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// agentTransport is how the agent's control stream reaches coordinators.
type agentTransport struct {
	dialOptions []grpc.DialOption
	reloader    *tlsutil.Reloader // the agent's certificate; nil for plaintext
	desc        string            // for the startup banner
}

// tlsFiles are the three files mutual TLS needs, by flag.
func (f *agentFlags) tlsFiles() []struct{ flag, v string } {
	return []struct{ flag, v string }{{"--ca-file", f.caFile}, {"--cert-file", f.certFile}, {"--key-file", f.keyFile}}
}

// useTLS reports whether any TLS file is configured.
func (f *agentFlags) useTLS() bool { return f.caFile != "" || f.certFile != "" || f.keyFile != "" }

// checkTransport checks the TLS flags against each other and, without TLS
// and without --insecure, that every coordinator address (--join and
// --coordinator) is on loopback. It reads no file.
func (f *agentFlags) checkTransport() error {
	if _, err := tlsutil.ParseVersion(f.tlsMinVersion); err != nil {
		return fmt.Errorf("--tls-min-version: %v", err)
	}
	if f.useTLS() {
		var missing []string
		for _, t := range f.tlsFiles() {
			if t.v == "" {
				missing = append(missing, t.flag)
			}
		}
		if len(missing) > 0 {
			verb := "is"
			if len(missing) > 1 {
				verb = "are"
			}
			return fmt.Errorf("%s %s required with the other TLS flags: mutual TLS needs the cluster CA (--ca-file), "+
				"the agent's certificate (--cert-file) and its key (--key-file); create them with 'perfleet tls cert create --agent'",
				strings.Join(missing, " and "), verb)
		}
		if f.insecure {
			return fmt.Errorf("--insecure turns TLS off: give either the TLS files (--ca-file, --cert-file, --key-file) or --insecure, not both")
		}
		return nil
	}
	if f.insecure {
		return nil
	}
	for _, addr := range append(splitComma(f.join), splitComma(f.coordinators)...) {
		if !isLoopback(addr) {
			return fmt.Errorf("coordinator address %s is not a loopback address and no TLS is configured: "+
				"give the agent's TLS files (--ca-file, --cert-file and --key-file; create an agent certificate with "+
				"'perfleet tls cert create --agent --region <region>') or pass --insecure to talk plaintext over the network", addr)
		}
	}
	return nil
}

// transport builds the control stream's transport: mutual TLS as
// agent.<region>.<domain> when the TLS files are given, plaintext
// otherwise (to loopback addresses only, unless --insecure). region is the
// coordinators' region, which their certificates name.
func (f *agentFlags) transport(region string, logger *slog.Logger) (*agentTransport, error) {
	if err := f.checkTransport(); err != nil {
		return nil, err
	}
	switch {
	case f.useTLS():
		if region == "" {
			return nil, fmt.Errorf("TLS needs the coordinators' region: give --region (or region in the config file); " +
				"the agent accepts only coordinators whose certificate is server.<region>.<domain>")
		}
		minVersion, _ := tlsutil.ParseVersion(f.tlsMinVersion) // checked above
		r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile,
			Region: region, Domain: f.tlsDomain, Role: tlsutil.RoleAgent, MinVersion: minVersion, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		return &agentTransport{
			dialOptions: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(r.ClientConfig()))},
			reloader:    r,
			desc:        fmt.Sprintf("mutual TLS as %s", r.Identity()),
		}, nil
	case f.insecure:
		logger.Warn("TLS is off (--insecure): the control stream to the coordinators is plaintext")
		return &agentTransport{
			dialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
			desc:        "plaintext (--insecure)",
		}, nil
	default:
		// Gossip or a redirect may name other coordinators later: the dialer
		// refuses any that is not on loopback.
		return &agentTransport{
			dialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(loopbackDialer)},
			desc: "plaintext, loopback coordinators only",
		}, nil
	}
}

// loopbackDialer dials TCP to loopback addresses and refuses any other, for
// a plaintext agent that was not given --insecure.
func loopbackDialer(ctx context.Context, addr string) (net.Conn, error) {
	if !isLoopback(addr) {
		return nil, fmt.Errorf("refusing plaintext to coordinator %s, which is not on loopback: "+
			"give the agent TLS files (--ca-file, --cert-file, --key-file) or --insecure", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// isLoopback reports whether addr (host:port or a bare host) is localhost
// or a loopback IP address (127.0.0.0/8, ::1).
func isLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
