// Package runner runs a benchmark plan end to end on one machine, the way
// `aiperf profile` does: levels (sweep, phases, stairs, rate, trace) with
// warmups, a protocol client per target, the metric sink, and AIPerf's
// result files per level.
package runner

import (
	"context"
	"strconv"
	"sync"

	"github.com/perfleet/perfleet/agent/dataset"
	"github.com/perfleet/perfleet/agent/loadgen"
	"github.com/perfleet/perfleet/agent/protocol"
	"github.com/perfleet/perfleet/pkg/metrics"
)

// requestDoer builds each request from the dataset and the model selector,
// sends it with the protocol client and settles token counts:
//
//	ISL, OSL from the server's usage when present (source "server"),
//	else from the tokenizer over the prompt and the generated text (source
//	"tokenizer"). With VerifyTokens, a server count that differs from the
//	tokenizer's count of the generated text is a mismatch.
type requestDoer struct {
	client  protocol.Client
	sampler *dataset.Sampler
	models  *protocol.ModelSelector
	tok     *dataset.Tokenizer
	verify  bool
	// maxTokens overrides the entry's output length per request (replay).
	maxTokens func(seq int64) int
	outs      sync.Pool
	session   int64
}

var _ loadgen.Doer = (*requestDoer)(nil)

func (d *requestDoer) Do(ctx context.Context, job loadgen.Job) *metrics.RequestRecord {
	e := d.sampler.At(uint64(job.Seq))
	req := protocol.Request{Model: d.models.Pick(), Messages: e.Messages, Prompt: e.Prompt, MaxTokens: e.MaxTokens,
		InputTokens: e.InputTokens, SessionNum: job.Seq, RequestID: strconv.FormatInt(job.Seq, 10)}
	if d.maxTokens != nil {
		if n := d.maxTokens(job.Seq); n > 0 {
			req.MaxTokens = n
		}
	}
	rec := &metrics.RequestRecord{ScheduledNs: job.ScheduledNs, SessionNum: job.Seq, RequestID: req.RequestID, Phase: job.Phase}
	out, _ := d.outs.Get().(*protocol.Output)
	if out == nil {
		out = &protocol.Output{}
	}
	out.Reset()
	d.client.Do(ctx, &req, rec, out)
	if rec.OK() {
		SettleTokens(rec, &req, out, d.tok, d.verify)
	}
	d.outs.Put(out)
	return rec
}

// SettleTokens fills a successful request's token counts and their source:
// the server's usage when it reported one (counting the client's tokenizer
// mismatch when verify is set), else the tokenizer. The standalone runner
// and the distributed shard executor both use it, so their counts agree.
func SettleTokens(rec *metrics.RequestRecord, req *protocol.Request, out *protocol.Output, tok *dataset.Tokenizer, verify bool) {
	if u := out.Usage; u != nil && (u.CompletionTokens > 0 || u.PromptTokens > 0) {
		rec.TokenSource = metrics.TokensServer
		rec.InputTokens = u.PromptTokens
		rec.ReasoningTokens = u.ReasoningTokens
		rec.OutputTokens = u.CompletionTokens - u.ReasoningTokens
		if verify && tok != nil {
			client := int64(tok.Count(string(out.Text)) + tok.Count(string(out.Reasoning)))
			rec.TokenMismatch = client != u.CompletionTokens
		}
		return
	}
	rec.TokenSource = metrics.TokensTokenizer
	rec.InputTokens = int64(req.InputTokens)
	if tok != nil {
		rec.OutputTokens = int64(tok.Count(string(out.Text)))
		rec.ReasoningTokens = int64(tok.Count(string(out.Reasoning)))
	}
}
