package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/perfleet/perfleet/pkg/telemetry"
)

// tracing is the process's tracer provider, built on first use from the
// OTEL_* environment: off (no-op) unless OTEL_TRACES_EXPORTER=otlp or an
// OTLP endpoint is set.
type tracing struct {
	once sync.Once
	t    *telemetry.Tracing
	err  error
}

// provider returns the tracer provider; when tracing is on it is also
// installed as the process's global provider and propagator (this is the
// binary's own path, never a library's).
func (tr *tracing) provider() (trace.TracerProvider, error) {
	tr.once.Do(func() {
		tr.t, tr.err = telemetry.TracingFromEnv(context.Background(), "perfleet")
		if tr.err != nil {
			tr.err = usageError{fmt.Errorf("tracing: %w", tr.err)}
			return
		}
		if tr.t.Enabled {
			otel.SetTracerProvider(tr.t.Provider)
			otel.SetTextMapPropagator(telemetry.Propagator)
		}
	})
	if tr.err != nil {
		return nil, tr.err
	}
	return tr.t.Provider, nil
}

// shutdown sends the spans still queued, for up to 5 s.
func (tr *tracing) shutdown() {
	if tr.t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.t.Shutdown(ctx)
}

// dialOptions are a client command's dial options: creds, and tracing when
// the environment turns it on.
func (g *globals) dialOptions(creds credentials.TransportCredentials) ([]grpc.DialOption, error) {
	tp, err := g.tracing.provider()
	if err != nil {
		return nil, err
	}
	return append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, telemetry.GRPCDialOptions(tp)...), nil
}
