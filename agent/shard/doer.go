package shard

import (
	"context"
	"github.com/perfleet/perfleet/agent/runner"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// doer is agent/runner's request doer with the shard's index mapping: the
// stage's request seq is the level's request start + seq×stride, and that
// global index picks the prompt, the round-robin model, the trace output
// length and the request ID. It also carries the graceful stop: once
// stopping is set, requests already in flight are no longer cancelled with
// the executor's context but only when base ends (the stop's grace period).
//
// Token counts are settled as in agent/runner: the server's usage when
// present (source "server"), else the tokenizer over the prompt and the
// generated text (source "tokenizer"); with verify, a server count that
// differs from the tokenizer's count of the generated text is a mismatch.
type doer struct {
	client    protocol.Client
	sampler   *dataset.Sampler
	models    []string
	random    *protocol.ModelSelector // nil: round robin by global index
	tok       *dataset.Tokenizer
	verify    bool
	maxTokens func(seq int64) int
	start     int64
	stride    int64

	// base ends when a stop's grace period is over (set before the run).
	base     context.Context
	stopping atomic.Bool
	outs     sync.Pool
}

var _ loadgen.Doer = (*doer)(nil)

// global maps the stage's request seq to the level's request index.
func (d *doer) global(seq int64) int64 { return d.start + seq*d.stride }

// model picks the model of the request with global index g.
func (d *doer) model(g int64) string {
	switch {
	case len(d.models) == 0:
		return ""
	case d.random != nil:
		return d.random.Pick()
	}
	return d.models[g%int64(len(d.models))]
}

// Do implements loadgen.Doer.
func (d *doer) Do(ctx context.Context, job loadgen.Job) *metrics.RequestRecord {
	g := d.global(job.Seq)
	e := d.sampler.At(uint64(g))
	req := protocol.Request{Model: d.model(g), Messages: e.Messages, Prompt: e.Prompt, MaxTokens: e.MaxTokens,
		InputTokens: e.InputTokens, SessionNum: g, RequestID: strconv.FormatInt(g, 10)}
	if d.maxTokens != nil {
		if n := d.maxTokens(g); n > 0 {
			req.MaxTokens = n
		}
	}
	rec := &metrics.RequestRecord{ScheduledNs: job.ScheduledNs, SessionNum: g, RequestID: req.RequestID, Phase: job.Phase}
	if d.stopping.Load() {
		// Issued in the instant the stop raced with the schedule: never sent.
		rec.Cancelled, rec.EndNs = true, metrics.Now()
		return rec
	}
	rctx, cancel := context.WithCancel(d.base)
	unhook := context.AfterFunc(ctx, func() {
		if !d.stopping.Load() {
			cancel()
		}
	})
	out, _ := d.outs.Get().(*protocol.Output)
	if out == nil {
		out = &protocol.Output{}
	}
	out.Reset()
	d.client.Do(rctx, &req, rec, out)
	unhook()
	cancel()
	if rec.OK() {
		runner.SettleTokens(rec, &req, out, d.tok, d.verify)
	} else if d.base.Err() != nil {
		rec.Cancelled = true
	}
	if rec.EndNs == 0 {
		rec.EndNs = metrics.Now()
	}
	d.outs.Put(out)
	return rec
}
