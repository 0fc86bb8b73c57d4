// Package cli is the perfleet command line: the server and dev modes and the
// API client commands. Client commands print human tables by default and
// protobuf JSON with -o json; errors name the field and the rule, never a
// stack trace.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// globals are the flags every client command takes.
type globals struct {
	addr    string
	output  string
	stale   bool
	timeout time.Duration
	out     io.Writer
	errOut  io.Writer

	token                    string // bearer token
	caFile, certFile, keyFil string // mutual TLS
	region, tlsDomain        string // the servers' certificate name

	tracing tracing // OTEL_* tracing, set up on first use
}

// Main runs the command line and returns the exit code: 0 on success, 1 when
// the command failed, 2 for a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout, errOut: stderr}
	defer g.tracing.shutdown()
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return 2
	}
	printError(stderr, err)
	return 1
}

// usageError is a mistake in the command line itself (exit code 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// args wraps a cobra argument check so its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "perfleet",
		Short: "perfleet: distributed benchmarking and capacity planning for model inference",
		Long: `perfleet runs SageMaker AI's inference-optimization API (AI workload configs,
AI benchmark jobs, AI recommendation jobs) on your own GPU fleet.

Start a cluster with 'perfleet server' (or 'perfleet dev' for a single
process), then manage resources with the client commands below. Client
commands talk gRPC to --addr (default $PERFLEET_ADDR or 127.0.0.1:7233); give
several comma-separated addresses to fail over between nodes.

With TLS (every 'perfleet server' not run with --insecure-loopback), give a
client certificate: --ca-file, --cert-file and --key-file, or
$PERFLEET_CACERT, $PERFLEET_CLIENT_CERT and $PERFLEET_CLIENT_KEY. Once ACLs
are bootstrapped, also give a token: --token or $PERFLEET_TOKEN.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	defAddr := os.Getenv("PERFLEET_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:7233"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", defAddr, "coordinator gRPC address(es), comma-separated ($PERFLEET_ADDR)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.BoolVar(&g.stale, "stale", false, "let any node answer reads from its local state (x-perfleet-consistency: stale)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "time limit for one command")
	pf.StringVar(&g.token, "token", os.Getenv("PERFLEET_TOKEN"), "ACL token secret ($PERFLEET_TOKEN)")
	pf.StringVar(&g.caFile, "ca-file", os.Getenv("PERFLEET_CACERT"), "PEM CA certificate for TLS ($PERFLEET_CACERT)")
	pf.StringVar(&g.certFile, "cert-file", os.Getenv("PERFLEET_CLIENT_CERT"), "PEM client certificate for mutual TLS ($PERFLEET_CLIENT_CERT)")
	pf.StringVar(&g.keyFil, "key-file", os.Getenv("PERFLEET_CLIENT_KEY"), "PEM key of --cert-file ($PERFLEET_CLIENT_KEY)")
	pf.StringVar(&g.region, "region", envOr("PERFLEET_REGION", "us-east-1"), "the cluster's region: TLS expects servers named server.<region>.<domain> ($PERFLEET_REGION)")
	pf.StringVar(&g.tlsDomain, "tls-domain", "", "domain of certificate role names (default perfleet)")
	root.AddCommand(newServerCmd(g), newDevCmd(g), newWorkloadConfigCmd(g), newEndpointCmd(g), newBenchmarkJobCmd(g),
		newRecommendationJobCmd(g), newAgentCmd(g), newOperatorCmd(g), newTLSCmd(g), newACLCmd(g), newAuditCmd(g), newSecretCmd(g))
	return root
}

// call runs fn against the cluster. It tries each address in turn when a node
// cannot be reached, and retries while the cluster has no leader. Only calls
// that are safe to repeat set retryUnknown: then an outcome-unknown
// Unavailable is retried too.
func (g *globals) call(ctx context.Context, retryUnknown bool, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	if g.output != "table" && g.output != "json" {
		return usageError{fmt.Errorf("--output must be table or json, got %q", g.output)}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	if g.stale {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-perfleet-consistency", "stale")
	}
	if g.token != "" {
		tok := strings.TrimSpace(g.token)
		if strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return usageError{fmt.Errorf("--token ($PERFLEET_TOKEN) must be one token secret (pft_...), without spaces or line breaks")}
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	creds, err := g.creds()
	if err != nil {
		return err
	}
	dial, err := g.dialOptions(creds)
	if err != nil {
		return err
	}
	addrs := strings.Split(g.addr, ",")
	start := time.Now()
	var last error // the most informative failure so far
	for attempt := 0; ; attempt++ {
		addr := strings.TrimSpace(addrs[attempt%len(addrs)])
		conn, err := grpc.NewClient(addr, dial...)
		if err != nil {
			return usageError{fmt.Errorf("--addr %q: %v", addr, err)}
		}
		err = fn(ctx, conn)
		conn.Close()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && last != nil {
			return retriesExhausted{last: last, after: time.Since(start)}
		}
		if status.Code(err) != codes.Unavailable {
			return err
		}
		// A server's own answer says more than a refused connection.
		if last == nil || reason(err) != "" || reason(last) == "" {
			last = err
		}
		if reason(err) == "ServiceUnavailable" && !retryUnknown {
			return err
		}
		select {
		case <-ctx.Done():
			return retriesExhausted{last: last, after: time.Since(start)}
		case <-time.After(backoff(attempt)):
		}
	}
}

// retriesExhausted is the last informative error of a call retried until
// its --timeout.
type retriesExhausted struct {
	last  error
	after time.Duration
}

func (r retriesExhausted) Error() string { return r.last.Error() }
func (r retriesExhausted) Unwrap() error { return r.last }

func backoff(attempt int) time.Duration {
	d := time.Duration(50<<min(attempt, 5)) * time.Millisecond
	return min(d, time.Second)
}

// reason is the AWS error name a server put in the status, or "".
func reason(err error) string { return endpoint.Reason(err) }

// printError prints an API error as its AWS error name, the message, and one
// line per field violation.
func printError(w io.Writer, err error) {
	var rx retriesExhausted
	if errors.As(err, &rx) {
		printError(w, rx.last)
		fmt.Fprintf(w, "(gave up after retrying for %v; raise --timeout to wait longer)\n", rx.after.Round(100*time.Millisecond))
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	r := reason(err)
	if r == "" {
		r = st.Code().String()
	}
	var fields []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			fields = append(fields, br.GetFieldViolations()...)
		}
	}
	if len(fields) > 0 {
		fmt.Fprintf(w, "error: %s: the request has %d invalid field(s):\n", r, len(fields))
		for _, f := range fields {
			fmt.Fprintf(w, "  %s: %s\n", f.GetField(), f.GetDescription())
		}
		return
	}
	msg := strings.TrimPrefix(st.Message(), r+": ")
	if st.Code() == codes.Unavailable && r == st.Code().String() {
		msg = fmt.Sprintf("cannot reach a coordinator (%s); is one running at the --addr you gave?", msg)
	}
	fmt.Fprintf(w, "error: %s: %s\n", r, msg)
}

// printJSON writes a message as indented protobuf JSON with snake_case names.
func (g *globals) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.out, string(b))
	return err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// creds are the transport credentials of client calls: mutual TLS with the
// given files, or plaintext without any.
func (g *globals) creds() (credentials.TransportCredentials, error) {
	if g.caFile == "" && g.certFile == "" && g.keyFil == "" {
		return insecure.NewCredentials(), nil
	}
	for _, f := range []struct{ flag, v string }{{"--ca-file", g.caFile}, {"--cert-file", g.certFile}, {"--key-file", g.keyFil}} {
		if f.v == "" {
			return nil, usageError{fmt.Errorf("%s is required with the other TLS flags: mutual TLS needs the CA, a client certificate and its key", f.flag)}
		}
	}
	r, err := tlsutil.NewReloader(tlsutil.Options{CAFile: g.caFile, CertFile: g.certFile, KeyFile: g.keyFil, Region: g.region,
		Domain: g.tlsDomain, PollInterval: -1})
	if err != nil {
		return nil, usageError{err}
	}
	return credentials.NewTLS(r.ClientConfig()), nil
}
