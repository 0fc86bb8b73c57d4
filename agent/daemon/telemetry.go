package daemon

import (
	"context"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/shard"
	"github.com/perfleet/perfleet/pkg/arn"
	"github.com/perfleet/perfleet/pkg/metrics"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// The agent's metric names (Prometheus series names, as served at /metrics
// with --metrics-addr, or with perfleet dev's). Every series has an agent
// label; the GPU series also gpu (index), uuid and model, and the schedule
// lag quantile (0.5, 0.99).
const (
	MetricShardsRunning     = "perfleet_agent_shards_running"
	MetricRequestsInFlight  = "perfleet_agent_requests_in_flight"
	MetricAchievedRate      = "perfleet_agent_achieved_request_rate"
	MetricTargetRate        = "perfleet_agent_target_request_rate"
	MetricScheduleLag       = "perfleet_agent_schedule_lag_seconds"
	MetricRequestsSent      = "perfleet_agent_requests_sent_total"
	MetricRequestsCompleted = "perfleet_agent_requests_completed_total"
	MetricRequestErrors     = "perfleet_agent_request_errors_total"
	MetricLateSends         = "perfleet_agent_late_sends_total"
	MetricDroppedSends      = "perfleet_agent_dropped_sends_total"
	MetricControlConnected  = "perfleet_agent_control_connected"
	MetricGPUUtilization    = "perfleet_gpu_utilization_percent"
	MetricGPUMemoryUsed     = "perfleet_gpu_memory_used_bytes"
	MetricGPUMemoryTotal    = "perfleet_gpu_memory_total_bytes"
	MetricGPUPower          = "perfleet_gpu_power_watts"
	MetricGPUTemperature    = "perfleet_gpu_temperature_celsius"
	MetricGPUSMClock        = "perfleet_gpu_sm_clock_mhz"
)

// SpanAgentShard is the span of one shard run on an agent.
const SpanAgentShard = "agent.shard"

// liveShard is a running shard's load, read at scrape time: the load
// engine's live counters, and the newest closed window's figures (set off
// the request path, by the window emitter).
type liveShard struct {
	prog *loadgen.Progress // set before the shard runs
	rate float64           // the planned open-loop rate (0: closed loop)
	last atomic.Pointer[windowFigures]
}

// windowFigures are what the load gauges take from one closed window.
type windowFigures struct {
	sendRate       float64 // requests sent per second
	lagP50, lagP99 float64 // schedule lag, seconds
	hasLag         bool
}

// observe keeps a closed window's figures.
func (l *liveShard) observe(w *metrics.Window) {
	f := &windowFigures{}
	if w.DurationMs > 0 {
		f.sendRate = float64(w.Counters[metrics.CounterSent]) / (float64(w.DurationMs) / 1000)
	}
	if h, ok := w.Hists[metrics.ScheduleLag]; ok && h.Count > 0 {
		st := h.Stats() // milliseconds
		f.lagP50, f.lagP99, f.hasLag = st.Pct(50)/1000, st.Pct(99)/1000, true
	}
	l.last.Store(f)
}

// loadCounts are cumulative request counts.
type loadCounts struct{ sent, done, errors, late, dropped int64 }

func (c *loadCounts) add(p *loadgen.Progress) {
	c.sent += p.Sent.Load()
	c.done += p.Done.Load()
	c.errors += p.Errors.Load()
	c.late += p.Late.Load()
	c.dropped += p.Dropped.Load()
}

// run prepares and runs a shard (shard.Run), tracked for the load metrics
// while it runs and traced as one span.
func (r *shardRunner) run(ctx context.Context, m *pb.RunShard, a shard.Assignment, opts shard.Options, live *liveShard) (res *shard.Result, err error) {
	p := m.GetShard()
	ctx, span := r.tracer.Start(ctx, SpanAgentShard, trace.WithAttributes(attribute.String("perfleet.job.arn", m.GetJobArn()),
		attribute.String("perfleet.level.name", levelLabel(m)), attribute.Int64("perfleet.shard.index", int64(p.GetIndex())),
		attribute.Int64("perfleet.shard.of", int64(p.GetOf())), attribute.Int64("perfleet.run_id", int64(m.GetRunId())),
		attribute.Bool("perfleet.warmup", m.GetWarmup())))
	defer func() {
		if res != nil {
			span.SetAttributes(attribute.Int64("perfleet.sent", res.Sent), attribute.Int64("perfleet.ok", res.OK),
				attribute.Int64("perfleet.errors", res.Errors), attribute.Bool("perfleet.stopped", res.Stopped))
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	e, err := shard.New(a, opts)
	if err != nil {
		return nil, err
	}
	live.prog = e.Progress()
	id := m.GetRunId()
	r.mu.Lock()
	r.live[id] = live
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.live, id)
		r.ended.add(live.prog)
		r.mu.Unlock()
	}()
	return e.Run(ctx)
}

// loadNow sums the running shards' live figures and the ended shards'
// counts.
func (r *shardRunner) loadNow() (running int, inFlight int64, sendRate, target float64, lagP50, lagP99 float64, hasLag bool, total loadCounts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total = r.ended
	for _, l := range r.live {
		running++
		inFlight += l.prog.InFlight.Load()
		total.add(l.prog)
		target += l.rate
		if f := l.last.Load(); f != nil {
			sendRate += f.sendRate
			if f.hasLag {
				lagP50, lagP99, hasLag = max(lagP50, f.lagP50), max(lagP99, f.lagP99), true
			}
		}
	}
	return
}

// jobName is a job ARN's name (the ARN itself when it does not parse).
func jobName(jobARN string) string {
	if a, err := arn.Parse(jobARN); err == nil {
		return a.Name
	}
	return jobARN
}

// levelLabel names a shard's level: its name, or its index.
func levelLabel(m *pb.RunShard) string {
	if m.GetLevelName() != "" {
		return m.GetLevelName()
	}
	return strconv.Itoa(int(m.GetLevelIndex()))
}

// instrument registers the agent's gauges and counters on mp, read at
// scrape time from what the agent already keeps: the shards' live load
// counters and newest windows, the GPU sampler's latest samples, the
// control stream.
func (a *Agent) instrument(mp metric.MeterProvider) (metric.Registration, error) {
	m := telemetry.Meter(mp)
	agent := attribute.String("agent", a.cfg.ID)
	on := metric.WithAttributes(agent)
	running, _ := m.Int64ObservableGauge(MetricShardsRunning, metric.WithDescription("Shards generating load on this agent now."))
	inFlight, _ := m.Int64ObservableGauge(MetricRequestsInFlight, metric.WithDescription("Requests in flight from this agent's load generators."))
	rate, _ := m.Float64ObservableGauge(MetricAchievedRate, metric.WithDescription("Requests sent per second in the newest closed 1 s window, over the running shards."))
	target, _ := m.Float64ObservableGauge(MetricTargetRate, metric.WithDescription("Planned open-loop request rate of the running shards (0 for closed-loop shards)."))
	lag, _ := m.Float64ObservableGauge(MetricScheduleLag, metric.WithUnit("s"),
		metric.WithDescription("Schedule lag (actual minus scheduled send time) in the newest window, worst running shard, by quantile."))
	sent, _ := m.Int64ObservableCounter(MetricRequestsSent, metric.WithDescription("Requests this agent's load generators sent."))
	done, _ := m.Int64ObservableCounter(MetricRequestsCompleted, metric.WithDescription("Requests that ended (ok or error)."))
	errs, _ := m.Int64ObservableCounter(MetricRequestErrors, metric.WithDescription("Requests that ended in an error."))
	late, _ := m.Int64ObservableCounter(MetricLateSends, metric.WithDescription("Open-loop sends later than 1 ms after their schedule."))
	dropped, _ := m.Int64ObservableCounter(MetricDroppedSends, metric.WithDescription("Open-loop sends skipped for lateness."))
	connected, _ := m.Int64ObservableGauge(MetricControlConnected, metric.WithDescription("1 while the control stream to the leader is up."))
	util, _ := m.Float64ObservableGauge(MetricGPUUtilization, metric.WithUnit("%"), metric.WithDescription("GPU utilisation (NVML), per GPU."))
	memUsed, _ := m.Int64ObservableGauge(MetricGPUMemoryUsed, metric.WithUnit("By"), metric.WithDescription("GPU memory used, per GPU."))
	memTotal, _ := m.Int64ObservableGauge(MetricGPUMemoryTotal, metric.WithUnit("By"), metric.WithDescription("GPU memory, per GPU."))
	power, _ := m.Float64ObservableGauge(MetricGPUPower, metric.WithUnit("W"), metric.WithDescription("GPU board power draw, per GPU."))
	temp, _ := m.Int64ObservableGauge(MetricGPUTemperature, metric.WithUnit("Cel"), metric.WithDescription("GPU core temperature, per GPU."))
	clock, _ := m.Int64ObservableGauge(MetricGPUSMClock, metric.WithDescription("GPU SM clock in MHz, per GPU."))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		n, fl, sr, tr, p50, p99, hasLag, c := a.shards.loadNow()
		o.ObserveInt64(running, int64(n), on)
		o.ObserveInt64(inFlight, fl, on)
		o.ObserveFloat64(rate, sr, on)
		o.ObserveFloat64(target, tr, on)
		if hasLag {
			o.ObserveFloat64(lag, p50, metric.WithAttributes(agent, attribute.String("quantile", "0.5")))
			o.ObserveFloat64(lag, p99, metric.WithAttributes(agent, attribute.String("quantile", "0.99")))
		}
		o.ObserveInt64(sent, c.sent, on)
		o.ObserveInt64(done, c.done, on)
		o.ObserveInt64(errs, c.errors, on)
		o.ObserveInt64(late, c.late, on)
		o.ObserveInt64(dropped, c.dropped, on)
		up := int64(0)
		if _, ok := a.control.Leader(); ok {
			up = 1
		}
		o.ObserveInt64(connected, up, on)
		devices := map[int]gpu.Device{}
		for _, d := range a.sampler.Inventory().Devices {
			devices[d.Index] = d
		}
		for _, smp := range a.sampler.Latest() {
			d := devices[smp.Index]
			if smp.Lost || d.Lost {
				continue
			}
			attrs := metric.WithAttributes(agent, attribute.String("gpu", strconv.Itoa(smp.Index)), attribute.String("uuid", d.UUID),
				attribute.String("model", d.Name))
			if smp.Has(gpu.FieldGPUUtil) {
				o.ObserveFloat64(util, smp.GPUUtil, attrs)
			}
			if smp.Has(gpu.FieldMemUsed) {
				o.ObserveInt64(memUsed, int64(smp.MemUsedBytes), attrs)
			}
			if d.MemoryTotalBytes > 0 {
				o.ObserveInt64(memTotal, int64(d.MemoryTotalBytes), attrs)
			}
			if smp.Has(gpu.FieldPower) {
				o.ObserveFloat64(power, smp.PowerWatts, attrs)
			}
			if smp.Has(gpu.FieldTemperature) {
				o.ObserveInt64(temp, int64(smp.TemperatureC), attrs)
			}
			if smp.Has(gpu.FieldSMClock) {
				o.ObserveInt64(clock, int64(smp.SMClockMHz), attrs)
			}
		}
		return nil
	}, running, inFlight, rate, target, lag, sent, done, errs, late, dropped, connected, util, memUsed, memTotal, power, temp, clock)
}
