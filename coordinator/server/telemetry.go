package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// The coordinator's metric names (Prometheus series names, as served at
// /metrics with --metrics-addr); deploy/grafana/perfleet.json is built on
// them. The window merge histogram is runner.WindowMergeMetric.
const (
	MetricRaftTerm          = "perfleet_raft_term"
	MetricRaftCommitIndex   = "perfleet_raft_commit_index"
	MetricRaftAppliedIndex  = "perfleet_raft_applied_index"
	MetricRaftLastIndex     = "perfleet_raft_last_log_index"
	MetricRaftLastContact   = "perfleet_raft_last_contact_seconds"
	MetricRaftLeader        = "perfleet_raft_leader"
	MetricRaftLeaderChanges = "perfleet_raft_leader_changes_total"
	MetricRaftApply         = "perfleet_raft_apply_duration_seconds"
	MetricAPICalls          = "perfleet_api_calls_total"
	MetricAPIDuration       = "perfleet_api_call_duration_seconds"
	MetricJobs              = "perfleet_jobs"
	MetricAgents            = "perfleet_agents"
	MetricAgentsConnected   = "perfleet_agents_connected"
)

// SpanRaftApply is the span around a command's Raft apply on the leader.
const SpanRaftApply = "raft.apply"

// Agent statuses the agents gauge always reports, zero or not.
var agentStatuses = []string{"alive", "suspect", "failed", "left"}

// jobKinds maps the store's job kinds to the jobs gauge's kind label.
var jobKinds = []struct{ kind, label string }{{state.KindBenchmark, "benchmark"}, {state.KindRecommendation, "recommendation"}}

var jobStatuses = []string{state.StatusInProgress, state.StatusCompleted, state.StatusFailed, state.StatusStopping, state.StatusStopped}

// nodeTelemetry is a node's metrics listener, instruments and tracer. With
// no metrics_addr its instruments are no-ops; with no tracer provider its
// tracer is.
type nodeTelemetry struct {
	metrics *telemetry.Metrics       // nil without metrics_addr
	http    *telemetry.MetricsServer // nil without metrics_addr
	tracer  trace.Tracer

	apiCalls    metric.Int64Counter
	apiDuration metric.Float64Histogram
	apply       metric.Float64Histogram

	leaderChanges atomic.Int64
	observer      *raft.Observer
	callbacks     metric.Registration
}

// listenMetrics opens the metrics listener when metrics_addr is set; the
// series appear once instrument has run.
func (s *Server) listenMetrics() error {
	s.tel = &nodeTelemetry{tracer: telemetry.Tracer(s.cfg.TracerProvider)}
	noop := telemetry.Meter(nil) // until instrument runs, or for good without metrics
	s.tel.apiCalls, _ = noop.Int64Counter(MetricAPICalls)
	s.tel.apiDuration, _ = noop.Float64Histogram(MetricAPIDuration)
	s.tel.apply, _ = noop.Float64Histogram(MetricRaftApply)
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	m, err := telemetry.NewMetrics("perfleet")
	if err != nil {
		return err
	}
	srv, err := telemetry.ServeMetrics(s.cfg.MetricsAddr, m)
	if err != nil {
		_ = m.Shutdown(context.Background())
		return err
	}
	s.tel.metrics, s.tel.http = m, srv
	return nil
}

// MetricsAddr is the bound address of the metrics listener, or "" without
// one.
func (s *Server) MetricsAddr() string {
	if s.tel == nil || s.tel.http == nil {
		return ""
	}
	return s.tel.http.Addr()
}

// MeterProvider is the provider behind /metrics, for what runs beside the
// node in its process (perfleet dev's agents); nil without metrics_addr.
func (s *Server) MeterProvider() metric.MeterProvider {
	if s.tel == nil || s.tel.metrics == nil {
		return nil
	}
	return s.tel.metrics.MeterProvider()
}

// TracerProvider is the node's tracer provider (nil: tracing off).
func (s *Server) TracerProvider() trace.TracerProvider { return s.cfg.TracerProvider }

// instrument creates the node's instruments, once Raft, the state store
// and the runner exist: histograms and counters on the API and Raft apply
// paths, and gauges read at scrape time from what the node already keeps.
func (s *Server) instrument() error {
	var mp metric.MeterProvider
	if s.tel.metrics != nil {
		mp = s.tel.metrics.MeterProvider()
	}
	if err := s.runner.Instrument(s.cfg.TracerProvider, mp); err != nil {
		return err
	}
	if mp == nil {
		return nil
	}
	m := telemetry.Meter(mp)
	var err error
	t := s.tel
	if t.apiCalls, err = m.Int64Counter(MetricAPICalls, metric.WithDescription("API calls served, by method, gRPC code and transport (grpc or gateway).")); err != nil {
		return err
	}
	if t.apiDuration, err = m.Float64Histogram(MetricAPIDuration, metric.WithUnit("s"), metric.WithDescription("API call latency on this node."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...)); err != nil {
		return err
	}
	if t.apply, err = m.Float64Histogram(MetricRaftApply, metric.WithUnit("s"), metric.WithDescription("Time from raft.Apply to the FSM's answer on the leader, by command."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets...)); err != nil {
		return err
	}
	term, _ := m.Int64ObservableGauge(MetricRaftTerm, metric.WithDescription("Current Raft term."))
	commit, _ := m.Int64ObservableGauge(MetricRaftCommitIndex, metric.WithDescription("Highest Raft log index known committed."))
	applied, _ := m.Int64ObservableGauge(MetricRaftAppliedIndex, metric.WithDescription("Highest Raft log index applied to the FSM."))
	last, _ := m.Int64ObservableGauge(MetricRaftLastIndex, metric.WithDescription("Last index in the Raft log or snapshot."))
	contact, _ := m.Float64ObservableGauge(MetricRaftLastContact, metric.WithUnit("s"),
		metric.WithDescription("Seconds since this follower last heard from the leader (0 on the leader; absent before any contact)."))
	leader, _ := m.Int64ObservableGauge(MetricRaftLeader, metric.WithDescription("1 while this node is the Raft leader."))
	changes, _ := m.Int64ObservableCounter(MetricRaftLeaderChanges, metric.WithDescription("Leader changes this node observed."))
	jobs, _ := m.Int64ObservableGauge(MetricJobs, metric.WithDescription("Jobs in the replicated state, by kind and state."))
	agents, _ := m.Int64ObservableGauge(MetricAgents, metric.WithDescription("Agents in the fleet registry, by status."))
	connected, _ := m.Int64ObservableGauge(MetricAgentsConnected, metric.WithDescription("Agents holding a control stream to this node (the leader)."))
	t.callbacks, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r := s.raft
		o.ObserveInt64(term, int64(r.CurrentTerm()))
		o.ObserveInt64(commit, int64(r.CommitIndex()))
		o.ObserveInt64(applied, int64(r.AppliedIndex()))
		o.ObserveInt64(last, int64(r.LastIndex()))
		if r.State() == raft.Leader {
			o.ObserveInt64(leader, 1)
			o.ObserveFloat64(contact, 0)
		} else {
			o.ObserveInt64(leader, 0)
			if lc := r.LastContact(); !lc.IsZero() {
				o.ObserveFloat64(contact, time.Since(lc).Seconds())
			}
		}
		o.ObserveInt64(changes, t.leaderChanges.Load())
		st := s.State()
		for _, k := range jobKinds {
			for _, status := range jobStatuses {
				if js, err := st.JobsInStatus(nil, k.kind, status); err == nil {
					o.ObserveInt64(jobs, int64(len(js)), metric.WithAttributes(attribute.String("kind", k.label), attribute.String("state", status)))
				}
			}
		}
		if all, err := st.Agents(nil); err == nil {
			by := map[string]int64{}
			for _, name := range agentStatuses {
				by[name] = 0
			}
			for _, a := range all {
				by[a.GetStatus()]++
			}
			for status, n := range by {
				o.ObserveInt64(agents, n, metric.WithAttributes(attribute.String("status", status)))
			}
		}
		o.ObserveInt64(connected, int64(len(s.sessions.ids())))
		return nil
	}, term, commit, applied, last, contact, leader, changes, jobs, agents, connected)
	if err != nil {
		return err
	}
	// Leader changes come from Raft's observations (the leader this node
	// sees changing to another, not losing one).
	ch := make(chan raft.Observation, 16)
	t.observer = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(t.observer)
	s.goRun(func() {
		var current raft.ServerID
		for {
			select {
			case <-s.ctx.Done():
				return
			case o := <-ch:
				if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" && lo.LeaderID != current {
					current = lo.LeaderID
					t.leaderChanges.Add(1)
				}
			}
		}
	})
	return nil
}

// closeTelemetry stops serving metrics and drops the scrape callbacks.
func (s *Server) closeTelemetry() {
	if s.tel == nil {
		return
	}
	if s.tel.observer != nil {
		s.raft.DeregisterObserver(s.tel.observer)
	}
	if s.tel.callbacks != nil {
		_ = s.tel.callbacks.Unregister()
	}
	if s.tel.http != nil {
		_ = s.tel.http.Close()
	}
}

// observeCall counts an API call and its latency.
func (s *Server) observeCall(ctx context.Context, transport, method string, start time.Time, err error) {
	if s.tel.metrics == nil {
		return // metrics off: not even the attribute sets
	}
	attrs := metric.WithAttributes(attribute.String("method", method), attribute.String("code", status.Code(err).String()),
		attribute.String("transport", transport))
	s.tel.apiCalls.Add(ctx, 1, attrs)
	s.tel.apiDuration.Record(ctx, time.Since(start).Seconds(), attrs)
}

// metricsUnary counts every unary gRPC call, outermost in the chain, so
// that calls refused by routing or authorization count too.
func (s *Server) metricsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.observeCall(ctx, "grpc", info.FullMethod, start, err)
	return resp, err
}

// metricsStream counts every streaming call when it ends.
func (s *Server) metricsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.observeCall(ss.Context(), "grpc", info.FullMethod, start, err)
	return err
}

// traceApply starts the span around a Raft apply and returns the function
// that ends it and records the apply latency. A job's create command notes
// the calling span first, so the job's span becomes its child.
func (s *Server) traceApply(ctx context.Context, msg proto.Message) (context.Context, func(error)) {
	command := string(msg.ProtoReflect().Descriptor().Name())
	if c, ok := msg.(*pb.CreateResourceCommand); ok && s.runner != nil {
		sc := trace.SpanContextFromContext(ctx)
		if b := c.GetBenchmarkJob(); b != nil {
			s.runner.NoteCreated(state.KindBenchmark, b.GetAccountId(), b.GetJob().GetAiBenchmarkJobName(), sc)
		} else if r := c.GetRecommendationJob(); r != nil {
			s.runner.NoteCreated(state.KindRecommendation, r.GetAccountId(), r.GetJob().GetAiRecommendationJobName(), sc)
		}
	}
	start := time.Now()
	ctx, span := s.tel.tracer.Start(ctx, SpanRaftApply, trace.WithAttributes(attribute.String("perfleet.raft.command", command)))
	return ctx, func(err error) {
		if s.tel.metrics != nil {
			s.tel.apply.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("command", command)))
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
