// Package telemetry holds what coordinators and agents share for
// observability: OpenTelemetry metrics exported in Prometheus text format on
// a listener of their own, OpenTelemetry tracing configured from the standard
// OTEL_* environment variables (off unless asked for), gRPC stats handlers,
// and the structured slog logger (text or JSON).
//
// Nothing here is global: each node builds its own Metrics (with its own
// Prometheus registry) and passes its providers down, so several servers and
// agents can run in one process (tests, perfleet dev). Only the binaries'
// main paths install a tracer provider globally.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of perfleet's own instruments.
const ScopeName = "github.com/perfleet/perfleet"

// LatencyBuckets are the histogram bounds, in seconds, of perfleet's latency
// histograms: 50 µs to 10 s (OpenTelemetry's default bounds suit
// milliseconds, not seconds).
var LatencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics is a MeterProvider whose instruments are exported in Prometheus
// text format by Handler, from a registry of its own.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	registry *prometheus.Registry
}

// NewMetrics builds a meter provider for service (service.name on the
// target_info series) and its Prometheus registry. The series carry the
// instrument names as they are (perfleet_...), without scope labels.
func NewMetrics(service string) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	// The Go runtime and process series operators expect of a Go service
	// (go_goroutines, go_memstats_*, process_resident_memory_bytes,
	// process_open_fds); they describe the whole process.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		res = resource.NewSchemaless(semconv.ServiceName(service))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	return &Metrics{provider: mp, registry: reg}, nil
}

// MeterProvider is the provider to create instruments from.
func (m *Metrics) MeterProvider() metric.MeterProvider { return m.provider }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Shutdown stops the provider; later scrapes return no perfleet series.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }

// Meter returns perfleet's meter of mp, or a no-op meter when mp is nil
// (metrics off).
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// MetricsServer serves /metrics over plain HTTP on a listener of its own.
type MetricsServer struct {
	lis     net.Listener
	srv     *http.Server
	done    chan struct{}
	metrics *Metrics
}

// ServeMetrics listens on addr (host:port; port 0 picks a free one) and
// serves m's series at /metrics, and a one-line index at /.
func ServeMetrics(addr string, m *Metrics) (*MetricsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics_addr %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "perfleet: Prometheus metrics at /metrics")
	})
	s := &MetricsServer{lis: lis, done: make(chan struct{}), metrics: m,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener was closed under it; Close reports nothing more useful
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *MetricsServer) Addr() string { return s.lis.Addr().String() }

// Close stops serving (scrapes in progress get up to 2 s) and shuts the
// meter provider down.
func (s *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return s.metrics.Shutdown(ctx)
}
