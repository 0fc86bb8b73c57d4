package runner

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// Span names of a job's life. A benchmark job's span has a plan span, a
// level span per level (its shards' spans and its results span inside), and
// a report span; a recommendation job's span holds a candidate span per
// candidate, whose child benchmark jobs are children of it.
const (
	SpanBenchmarkJob      = "job.benchmark"
	SpanRecommendationJob = "job.recommendation"
	SpanPlan              = "job.plan"
	SpanLevel             = "job.level"
	SpanShard             = "job.shard"
	SpanResults           = "job.results"
	SpanReport            = "job.report"
	SpanCandidate         = "job.candidate"
)

// WindowMergeMetric is the histogram of the time the leader takes to decode
// and merge one agent window into its shard's running totals.
const WindowMergeMetric = "perfleet_window_merge_duration_seconds"

// instruments are the runner's tracer and meters; no-ops until Instrument.
type instruments struct {
	tracer trace.Tracer
	merge  metric.Float64Histogram

	mu sync.Mutex
	// created holds the span context of the call that created a job (the
	// create RPC, or a recommendation job's candidate), so the job's span
	// is its child when this node runs it.
	created map[string]trace.SpanContext
}

func newInstruments() *instruments {
	ins := &instruments{tracer: telemetry.Tracer(nil)}
	ins.merge, _ = telemetry.Meter(nil).Float64Histogram(WindowMergeMetric)
	return ins
}

// Instrument makes the runner trace jobs with tp and record the window merge
// latency with mp; nil leaves either off. Call it before Run.
func (r *Runner) Instrument(tp trace.TracerProvider, mp metric.MeterProvider) error {
	r.ins.tracer = telemetry.Tracer(tp)
	h, err := telemetry.Meter(mp).Float64Histogram(WindowMergeMetric, metric.WithUnit("s"),
		metric.WithDescription("Time the leader takes to decode and merge one agent metric window."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...))
	if err != nil {
		return err
	}
	r.ins.merge = h
	return nil
}

// NoteCreated remembers the span that created a job (its create call), so
// the job's span becomes its child. Only valid span contexts (tracing on)
// are kept, at most 1024 at a time.
func (r *Runner) NoteCreated(kind, account, name string, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	r.ins.mu.Lock()
	defer r.ins.mu.Unlock()
	if r.ins.created == nil || len(r.ins.created) >= 1024 {
		r.ins.created = map[string]trace.SpanContext{}
	}
	r.ins.created[kind+"/"+account+"/"+name] = sc
}

// startJobSpan starts a job's span, the child of its create call when this
// node took that call.
func (r *Runner) startJobSpan(ctx context.Context, name string, j *state.Job) (context.Context, trace.Span) {
	key := j.Kind + "/" + j.Account + "/" + j.Name
	r.ins.mu.Lock()
	sc, ok := r.ins.created[key]
	delete(r.ins.created, key)
	r.ins.mu.Unlock()
	if ok {
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	return r.ins.tracer.Start(ctx, name, trace.WithAttributes(attribute.String("perfleet.job.name", j.Name),
		attribute.String("perfleet.job.arn", j.ARN()), attribute.String("perfleet.account", j.Account)))
}

// endSpan records err (when not nil) on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
