package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// Propagator carries trace context across gRPC calls: W3C traceparent and
// baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// TracingEnabled reports whether the OTEL_* environment asks for traces, and
// why not or which setting is unsupported. Tracing is off by default; it is
// on when OTEL_TRACES_EXPORTER is otlp, or when it is unset and
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
// OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off. Only
// OTLP over gRPC is supported: another exporter or protocol is an error.
func TracingEnabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := false
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
		on = true
	case "":
		on = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s is not supported: perfleet exports traces with otlp (OTLP over gRPC) or none", exp)
	}
	if !on {
		return false, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p := strings.ToLower(strings.TrimSpace(proto)); p != "" && p != "grpc" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: perfleet exports OTLP over grpc (port 4317)", p)
	}
	return true, nil
}

// Tracing is a node's tracer provider and how to stop it.
type Tracing struct {
	// Provider is the SDK provider when tracing is on, the no-op provider
	// otherwise.
	Provider trace.TracerProvider
	// Enabled is set when spans are exported.
	Enabled bool
	sdk     *sdktrace.TracerProvider
}

// TracingFromEnv builds the tracer provider the OTEL_* environment asks for
// (see TracingEnabled): an OTLP/gRPC exporter behind a batch span processor,
// configured by the exporter's own variables (OTEL_EXPORTER_OTLP_ENDPOINT,
// _HEADERS, _INSECURE, _CERTIFICATE, _TIMEOUT, ...), the sampler from
// OTEL_TRACES_SAMPLER, the resource from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service defaults to service). With tracing off
// it returns the no-op provider, which costs nothing.
func TracingFromEnv(ctx context.Context, service string) (*Tracing, error) {
	on, err := TracingEnabled(os.Getenv)
	if err != nil {
		return nil, err
	}
	if !on {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)), resource.WithFromEnv(),
		resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil {
		res = resource.NewSchemaless(semconv.ServiceName(service))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Enabled: true, sdk: tp}, nil
}

// Shutdown flushes the spans still queued and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Tracer returns perfleet's tracer of tp, or a no-op tracer when tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// isNoop reports whether tp records nothing (nil or the no-op provider), so
// that gRPC gets no stats handler at all.
func isNoop(tp trace.TracerProvider) bool {
	if tp == nil {
		return true
	}
	_, ok := tp.(noop.TracerProvider)
	return ok
}

// grpcOptions are the otelgrpc settings: spans from tp, W3C propagation, no
// metrics (perfleet counts API calls itself) and no spans for health checks.
func grpcOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithTracerProvider(tp), otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithPropagators(Propagator), otelgrpc.WithFilter(filters.Not(filters.HealthCheck()))}
}

// GRPCServerOptions trace every call a gRPC server serves with tp; none
// when tp records nothing.
func GRPCServerOptions(tp trace.TracerProvider) []grpc.ServerOption {
	if isNoop(tp) {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(grpcOptions(tp)...))}
}

// GRPCDialOptions trace every call a gRPC client makes with tp, and carry
// the caller's trace context to the server; none when tp records nothing.
func GRPCDialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if isNoop(tp) {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(grpcOptions(tp)...))}
}
