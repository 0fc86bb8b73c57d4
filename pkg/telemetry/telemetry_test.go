package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestMetricsServedInPrometheusFormat(t *testing.T) {
	m, err := NewMetrics("perfleet-test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServeMetrics("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	meter := Meter(m.MeterProvider())
	calls, _ := meter.Int64Counter("perfleet_test_calls_total")
	calls.Add(context.Background(), 3, metric.WithAttributes(attribute.String("method", "/a.B/C")))
	lat, _ := meter.Float64Histogram("perfleet_test_duration_seconds", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	lat.Record(context.Background(), 0.002)
	_, _ = meter.Int64ObservableGauge("perfleet_test_term", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(7)
		return nil
	}))
	_, _ = meter.Float64ObservableGauge("perfleet_test_power_watts", metric.WithUnit("W"), metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(250.5, metric.WithAttributes(attribute.String("gpu", "0")))
		return nil
	}))
	body := scrape(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{`perfleet_test_calls_total{method="/a.B/C"} 3`, `perfleet_test_duration_seconds_bucket{le="0.0025"} 1`,
		"perfleet_test_duration_seconds_count 1", "perfleet_test_term 7", `perfleet_test_power_watts{gpu="0"} 250.5`,
		`target_info{service_name="perfleet-test"`} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "otel_scope_name") {
		t.Errorf("series carry scope labels:\n%s", body)
	}
	// A second provider in the same process has its own registry.
	m2, err := NewMetrics("other")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(context.Background())
	_, _ = Meter(m2.MeterProvider()).Int64ObservableGauge("perfleet_test_term", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(1)
		return nil
	}))
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: time.Second}
	if _, err := c.Get("http://" + srv.Addr() + "/metrics"); err == nil {
		t.Fatal("the metrics listener still answers after Close")
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func TestTracingEnabledFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4317"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, bad: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, on: true},
	} {
		on, err := TracingEnabled(func(k string) string { return tc.env[k] })
		if on != tc.on || (err != nil) != tc.bad {
			t.Errorf("%v: enabled %v, err %v; want %v, error %v", tc.env, on, err, tc.on, tc.bad)
		}
	}
}

func TestTracingOffIsNoop(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := TracingFromEnv(context.Background(), "perfleet")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled {
		t.Fatal("tracing on without OTEL_* settings")
	}
	if GRPCServerOptions(tr.Provider) != nil || GRPCDialOptions(tr.Provider) != nil || GRPCServerOptions(nil) != nil {
		t.Fatal("gRPC stats handlers installed with tracing off")
	}
	if GRPCServerOptions(noop.NewTracerProvider()) != nil {
		t.Fatal("the no-op provider got a stats handler")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	l, err := NewLogger(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("shard ended", "job", "j1", "shard", 2)
	l.Debug("hidden")
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON line: %q", b.String())
	}
	if rec["msg"] != "shard ended" || rec["job"] != "j1" || rec["shard"] != 2.0 {
		t.Fatalf("record %v", rec)
	}
	b.Reset()
	l, _ = NewLogger(&b, "debug", "")
	l.Debug("x", "job", "j1")
	if !strings.Contains(b.String(), "job=j1") {
		t.Fatalf("text line %q", b.String())
	}
	if _, err := NewLogger(&b, "info", "xml"); err == nil {
		t.Fatal("xml accepted")
	}
	if _, err := NewLogger(&b, "loud", "text"); err == nil {
		t.Fatal("bad level accepted")
	}
}
