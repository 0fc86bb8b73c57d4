// Package gateway serves SageMaker's AI inference-optimization API (the 14
// operations on AI workload configs, AI benchmark jobs and AI recommendation
// jobs) in AWS's JSON 1.1 protocol, so that the unmodified AWS SDKs and CLI
// work against a perfleet cluster by changing only the endpoint URL:
//
//	aws sagemaker list-ai-benchmark-jobs --endpoint-url http://127.0.0.1:8443
//	sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
//
// The wire protocol is SageMaker's: POST / with X-Amz-Target:
// SageMaker.<Operation> and Content-Type: application/x-amz-json-1.1;
// PascalCase member names exactly as in the SageMaker API reference;
// timestamps as epoch seconds (fractional allowed). Each JSON document is
// translated member by member (see shapes.go) into the perfleet.v1 request
// and handed to the very method handler gRPC uses, through the same unary
// interceptor, so validation, leader forwarding and read consistency are
// identical. Errors come back in AWS's JSON error shape (HTTP 400 with a
// __type such as ResourceNotFound, or 500 InternalFailure), which the SDKs
// decode into their typed errors.
//
// Requests are authenticated with SigV4: the gateway signs each request
// again with the AWS SDK for Go v2 signer and the access key's secret from
// a Credentials source, and compares signatures in constant time. Every
// response carries an x-amzn-RequestId, which is also logged.
//
// The gRPC-only extensions (WatchAIBenchmarkJob, GetAIBenchmarkJobResults,
// GetAIBenchmarkJobLog, the fleet and operator services) are not served
// here; nor are perfleet-only response fields such as a recommendation
// job's candidates, which the SageMaker shapes have no member for.
package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Wire constants of the awsJson1_1 protocol as SageMaker uses it.
const (
	// TargetPrefix starts every X-Amz-Target: SageMaker.<Operation>.
	TargetPrefix = "SageMaker."
	// ContentType is the media type of requests and responses.
	ContentType = "application/x-amz-json-1.1"
	// RequestIDHeader carries the request ID on every response.
	RequestIDHeader = "X-Amzn-RequestId"
	// ConsistencyHeader set to "stale" lets any node answer a Describe or
	// List from its local state, as the gRPC metadata header of the same
	// name does.
	ConsistencyHeader = "X-Perfleet-Consistency"
	// RequestIDMetadataKey is the gRPC metadata key under which a call
	// carries the gateway's request ID, also when it is forwarded to the
	// leader.
	RequestIDMetadataKey = "x-amzn-requestid"
	// DefaultMaxBodyBytes bounds a request body, as the gRPC API bounds a
	// message.
	DefaultMaxBodyBytes = 4 << 20
)

// operationNames are the 14 SageMaker operations served; each is the
// InferenceOptimization method of the same name.
var operationNames = []string{
	"CreateAIWorkloadConfig", "DescribeAIWorkloadConfig", "ListAIWorkloadConfigs", "DeleteAIWorkloadConfig",
	"CreateAIBenchmarkJob", "DescribeAIBenchmarkJob", "ListAIBenchmarkJobs", "StopAIBenchmarkJob", "DeleteAIBenchmarkJob",
	"CreateAIRecommendationJob", "DescribeAIRecommendationJob", "ListAIRecommendationJobs", "StopAIRecommendationJob", "DeleteAIRecommendationJob",
}

// Operations returns the names of the operations the gateway serves.
func Operations() []string { return append([]string(nil), operationNames...) }

// operation is one served operation: gRPC's method handler and the
// request message's descriptor.
type operation struct {
	name    string
	handler grpc.MethodHandler
	input   protoreflect.MessageDescriptor
}

var operations = func() map[string]operation {
	svc := pb.File_perfleet_v1_inference_optimization_proto.Services().ByName("InferenceOptimization")
	handlers := map[string]grpc.MethodHandler{}
	for _, md := range pb.InferenceOptimization_ServiceDesc.Methods {
		handlers[md.MethodName] = md.Handler
	}
	ops := map[string]operation{}
	for _, name := range operationNames {
		h, ok := handlers[name]
		method := svc.Methods().ByName(protoreflect.Name(name))
		if !ok || method == nil {
			panic("gateway: InferenceOptimization has no unary method " + name)
		}
		ops[name] = operation{name: name, handler: h, input: method.Input()}
	}
	return ops
}()

// Config configures a Gateway.
type Config struct {
	// Service answers the operations: the same InferenceOptimization
	// implementation that is registered on the gRPC server. Required.
	Service pb.InferenceOptimizationServer
	// Interceptor wraps every call exactly as the gRPC server's unary
	// interceptor does (the server's routing to the leader and error
	// mapping); nil calls Service directly.
	Interceptor grpc.UnaryServerInterceptor
	// Region is the region requests' SigV4 credential scope must name: the
	// server's region, as in its ARNs. Required.
	Region string
	// Credentials resolves access keys. Required; servers resolve the
	// ACL state's access keys, and DevCredentials until ACLs are
	// bootstrapped.
	Credentials Credentials
	// Logger receives one line per request; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock request timestamps are checked against; time.Now
	// when nil.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
}

// Gateway is the SageMaker-compatible JSON API: an http.Handler, and an
// HTTP server around it.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	verifier *verifier
	srv      *http.Server
}

var _ http.Handler = (*Gateway)(nil)

// New returns a gateway over a service.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("gateway: Service is required")
	case cfg.Region == "":
		return nil, errors.New("gateway: Region is required")
	case cfg.Credentials == nil:
		return nil, errors.New("gateway: Credentials are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, verifier: newVerifier(cfg.Credentials, cfg.Region, cfg.Now)}
	g.srv = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// Serve accepts HTTP connections on lis until Shutdown or Close; it returns
// nil then.
func (g *Gateway) Serve(lis net.Listener) error {
	if err := g.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight, up to
// ctx's deadline.
func (g *Gateway) Shutdown(ctx context.Context) error { return g.srv.Shutdown(ctx) }

// Close stops the server at once, dropping requests in flight.
func (g *Gateway) Close() error { return g.srv.Close() }

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
	callerKey
)

// RequestID returns the x-amzn-RequestId of the gateway request a context
// belongs to.
func RequestID(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(requestIDKey).(string)
	return id, ok
}

// Principal returns the principal the gateway authenticated for the
// request a context belongs to.
func Principal(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(principalKey).(string)
	return p, ok
}

// caller is what the gateway knows of a request's sender.
type caller struct {
	userAgent, remote string
	tls               bool
}

// UserAgent returns the User-Agent of the gateway request a context
// belongs to.
func UserAgent(ctx context.Context) string {
	c, _ := ctx.Value(callerKey).(caller)
	return c.userAgent
}

// SourceIP returns the address of the gateway request's sender.
func SourceIP(ctx context.Context) string {
	c, _ := ctx.Value(callerKey).(caller)
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		return host
	}
	return c.remote
}

// SecureTransport reports whether the gateway request came over TLS.
func SecureTransport(ctx context.Context) bool {
	c, _ := ctx.Value(callerKey).(caller)
	return c.tls
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ServeHTTP answers one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	w.Header().Set(RequestIDHeader, id)
	op, principal, body, aerr := g.handle(w, r, id)
	if aerr != nil {
		body = errorBody(aerr)
		w.Header().Set("X-Amzn-ErrorType", aerr.typ)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	status := http.StatusOK
	if aerr != nil {
		status = aerr.status
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)

	attrs := []slog.Attr{slog.String("request_id", id), slog.String("operation", op), slog.Int("status", status),
		slog.String("principal", principal), slog.String("remote", r.RemoteAddr), slog.Duration("took", time.Since(start))}
	level := slog.LevelDebug
	if aerr != nil {
		attrs = append(attrs, slog.String("error_type", aerr.typ), slog.String("error", aerr.message))
		level = slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
	}
	g.log.LogAttrs(r.Context(), level, "sagemaker api request", attrs...)
}

// handle authenticates, decodes and runs one request; it returns the
// operation's name, the principal, and the response body or the error.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, id string) (opName, principal string, out []byte, aerr *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return "", "", nil, newAPIError(http.StatusNotFound, typeUnknownOperation,
			"%s %s is not served: SageMaker operations are POST / with an X-Amz-Target header", r.Method, r.URL.Path)
	}
	// Name the operation in logs even when the request is refused.
	if name, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix); ok {
		if _, known := operations[name]; known {
			opName = name
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return opName, "", nil, newAPIError(http.StatusRequestEntityTooLarge, typeSerialization, "the request body exceeds %d bytes", g.cfg.MaxBodyBytes)
		}
		return opName, "", nil, serializationError("reading the request body: %v", err)
	}
	principal, aerr = g.verifier.verify(r.Context(), r, body)
	if aerr != nil {
		return opName, "", nil, aerr
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, TargetPrefix)
	op, known := operations[name]
	if !ok || !known {
		return "", principal, nil, newAPIError(http.StatusBadRequest, typeUnknownOperation,
			"unknown operation %q: X-Amz-Target must be SageMaker.<Operation>, one of %s", target, strings.Join(operationNames, ", "))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != ContentType && mt != "application/x-amz-json-1.0") {
		return op.name, principal, nil, newAPIError(http.StatusBadRequest, typeUnknownOperation,
			"Content-Type must be %s, got %q", ContentType, r.Header.Get("Content-Type"))
	}

	md := metadata.Pairs(RequestIDMetadataKey, id)
	if v := r.Header.Get(ConsistencyHeader); v != "" {
		md.Set(strings.ToLower(ConsistencyHeader), v)
	}
	ctx := metadata.NewIncomingContext(r.Context(), md)
	ctx = context.WithValue(ctx, requestIDKey, id)
	ctx = context.WithValue(ctx, principalKey, principal)
	ctx = context.WithValue(ctx, callerKey, caller{userAgent: r.UserAgent(), remote: r.RemoteAddr, tls: r.TLS != nil})

	resp, err := g.invoke(ctx, op, body)
	if err != nil {
		return op.name, principal, nil, toAPIError(err, op.input)
	}
	out, err = encodeResponse(resp)
	if err != nil {
		return op.name, principal, nil, toAPIError(err, op.input)
	}
	return op.name, principal, out, nil
}

// invoke runs gRPC's method handler: it decodes the body into the request
// message and calls the service through the interceptor.
func (g *Gateway) invoke(ctx context.Context, op operation, body []byte) (resp proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic serving a sagemaker api request", "operation", op.name, "panic", p)
			err = internalError("internal error")
		}
	}()
	dec := func(in any) error { return decodeRequest(body, in.(proto.Message)) }
	out, err := op.handler(g.cfg.Service, ctx, dec, g.cfg.Interceptor)
	if err != nil {
		return nil, err
	}
	msg, ok := out.(proto.Message)
	if !ok || msg == nil {
		return nil, internalError("%s returned no response", op.name)
	}
	return msg, nil
}

// errorBody is AWS's JSON error shape.
func errorBody(e *apiError) []byte {
	enc := &encoder{}
	enc.buf.WriteString(`{"__type":`)
	enc.string(e.typ)
	enc.buf.WriteString(`,"message":`)
	enc.string(e.message)
	enc.buf.WriteByte('}')
	return enc.buf.Bytes()
}
