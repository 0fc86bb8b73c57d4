package runner

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
)

// Candidate states of a recommendation job.
const (
	CandidatePending      = "Pending"
	CandidateDeploying    = "Deploying"
	CandidateBenchmarking = "Benchmarking"
	CandidateCompleted    = "Completed"
	CandidateFailed       = "Failed"
	CandidateSkipped      = "Skipped"
	CandidateStopped      = "Stopped"
)

// Recommendation goals (PerformanceTarget.Constraints[0].Metric).
const (
	GoalTTFT       = "ttft-ms"
	GoalThroughput = "throughput"
	GoalCost       = "cost"
)

// frameworkEnv is the deployment variable that records a candidate's
// framework.
const frameworkEnv = "PERFLEET_FRAMEWORK"

// maxCandidateTypes is SageMaker's limit on the instance types one
// recommendation job tries.
const maxCandidateTypes = 3

// weightsHeadroom is the share of a GPU's memory the weights of one
// tensor-parallel shard may take; the rest is left for the KV cache,
// activations and the CUDA context (vLLM reserves 90 % of memory and needs
// KV room inside it).
const weightsHeadroom = 0.8

// planInput is what candidate planning needs: the job's request and the live
// fleet.
type planInput struct {
	Goal          string
	InstanceTypes []string // the user's; empty lets the planner choose
	Framework     string   // VLLM, LMI, SGLANG or SIMULATOR; empty picks one
	ModelURI      string
	OptimizeModel bool
	Adapters      []string // adapter IDs, served as extra model names
	Agents        []*pb.Agent
	// CheckpointGiB is the size of the model's weight files when the
	// leader could list them (0: estimate from the name), and
	// CheckpointNote says how it was found.
	CheckpointGiB  float64
	CheckpointNote string
	// Price orders instance types for the cost goal ($/hour, NaN when
	// unknown).
	Price func(instanceType string, a *pb.Agent) float64
}

// fleetTypes groups live agents by instance type, each group sorted by ID.
func fleetTypes(agents []*pb.Agent) map[string][]*pb.Agent {
	m := map[string][]*pb.Agent{}
	for _, a := range agents {
		if a.GetInstanceType() != "" {
			m[a.GetInstanceType()] = append(m[a.GetInstanceType()], a)
		}
	}
	for _, l := range m {
		sort.Slice(l, func(i, j int) bool { return l[i].GetAgentId() < l[j].GetAgentId() })
	}
	return m
}

// usableAgents keeps the agents a candidate can be deployed on.
func usableAgents(agents []*pb.Agent) []*pb.Agent {
	var out []*pb.Agent
	for _, a := range agents {
		if a.GetStatus() == "alive" && a.GetConnected() {
			out = append(out, a)
		}
	}
	return out
}

// planCandidates turns a request into candidate deployments: one per
// instance type, with the tensor-parallel degree and copies chosen from the
// model's size, the GPUs' memory and the goal. Candidates that cannot run
// (no agent, model too large) come back Skipped with the reason. Agents are
// assigned round-robin within a type so that candidates of different types
// run in parallel.
func planCandidates(in planInput) (cands []*pb.RecommendationCandidate, notes []string) {
	byType := fleetTypes(usableAgents(in.Agents))
	weightsGiB, sizeNote := in.CheckpointGiB, in.CheckpointNote
	if weightsGiB == 0 {
		weightsGiB, sizeNote = modelWeightsGiB(in.ModelURI)
	}
	notes = append(notes, sizeNote)
	types := in.InstanceTypes
	if len(types) == 0 {
		types, notes = chooseTypes(in, byType, weightsGiB, notes)
	}
	fw := in.Framework
	for _, t := range types {
		newCand := func() *pb.RecommendationCandidate {
			c := &pb.RecommendationCandidate{Name: "c" + strconv.Itoa(len(cands)+1), Status: CandidatePending,
				DeploymentConfiguration: &pb.DeploymentConfiguration{InstanceType: t, InstanceCount: 1}}
			cands = append(cands, c)
			return c
		}
		c := newCand()
		agents := byType[t]
		if len(agents) == 0 {
			c.Status, c.StatusReason = CandidateSkipped, fmt.Sprintf("no live agent reports instance type %s", t)
			continue
		}
		a := agents[0]
		cfw := fw
		if cfw == "" {
			cfw = defaultFramework(a)
		}
		c.AgentId = a.GetAgentId()
		tp, copies, why, ok := chooseParallelism(in.Goal, cfw, a, weightsGiB)
		c.Explanation = why
		if !ok {
			c.Status, c.StatusReason = CandidateSkipped, why
			continue
		}
		layout(c, in, cfw, tp, copies, weightsGiB)
		// Many narrow copies win when the batch saturates, one wide copy when
		// latency bounds the rate; for throughput and cost both are measured.
		fits := fittingDegrees(a, weightsGiB) // not empty: chooseParallelism found one
		if wtp := fits[len(fits)-1]; in.Goal != GoalTTFT && wtp != tp && dataParallel(cfw) {
			w := newCand()
			w.AgentId = c.AgentId
			w.Explanation = fmt.Sprintf("%d x %s: one copy over %d GPUs (tensor parallel %d), measured against %s's %d copies: lower latency per request, which bounds the rate when the batch is not full",
				a.GetGpus().GetCount(), a.GetGpus().GetModel(), wtp, wtp, c.GetName(), copies)
			layout(w, in, cfw, wtp, int(a.GetGpus().GetCount())/wtp, weightsGiB)
		}
	}
	// Spread candidates of one type over that type's agents.
	next := map[string]int{}
	for _, c := range cands {
		t := c.GetDeploymentConfiguration().GetInstanceType()
		if l := byType[t]; len(l) > 0 && c.GetStatus() == CandidatePending {
			c.AgentId = l[next[t]%len(l)].GetAgentId()
			next[t]++
		}
	}
	return cands, notes
}

// layout fills a candidate's deployment for a layout.
func layout(c *pb.RecommendationCandidate, in planInput, fw string, tp, copies int, weightsGiB float64) {
	c.TensorParallelDegree, c.DeploymentConfiguration.CopyCountPerInstance = int32(tp), int32(copies)
	c.DeploymentConfiguration.ImageUri = frameworkImage(fw)
	// The layout as variables, the way SageMaker's LMI containers take it.
	c.DeploymentConfiguration.EnvironmentVariables = map[string]string{
		"OPTION_TENSOR_PARALLEL_DEGREE": strconv.Itoa(tp),
		"OPTION_DATA_PARALLEL_SIZE":     strconv.Itoa(copies),
		frameworkEnv:                    fw,
	}
	if weightsGiB > 0 {
		c.DeploymentConfiguration.MinCpuMemoryRequiredInMb = int64(math.Ceil(weightsGiB * 1024 * 1.2))
	}
	applyOptimizations(c, in, fw)
}

// fittingDegrees lists the tensor-parallel degrees (1, 2, 4, 8) that
// divide an agent's GPUs and leave KV-cache room beside a shard of the
// weights, smallest first; every larger divisor fits once one does.
func fittingDegrees(a *pb.Agent, weightsGiB float64) []int {
	gpus := int(a.GetGpus().GetCount())
	memGiB := float64(a.GetGpus().GetMemoryMib()) / 1024
	var fits []int
	for _, t := range []int{1, 2, 4, 8} {
		if t <= gpus && gpus%t == 0 && (weightsGiB == 0 || memGiB == 0 || weightsGiB/float64(t) <= weightsHeadroom*memGiB) {
			fits = append(fits, t)
		}
	}
	return fits
}

// chooseTypes picks up to three instance types from the fleet when the
// request names none: for the cost goal the cheapest that fit the model,
// otherwise those with the most GPU memory per agent.
func chooseTypes(in planInput, byType map[string][]*pb.Agent, weightsGiB float64, notes []string) ([]string, []string) {
	type opt struct {
		t     string
		price float64
		mem   float64
	}
	var opts []opt
	var unfit []string
	for t, agents := range byType {
		a := agents[0]
		if _, _, _, ok := chooseParallelism(in.Goal, defaultFramework(a), a, weightsGiB); !ok {
			unfit = append(unfit, t)
			continue
		}
		p := math.NaN()
		if in.Price != nil {
			p = in.Price(t, a)
		}
		opts = append(opts, opt{t: t, price: p, mem: float64(a.GetGpus().GetCount()) * float64(a.GetGpus().GetMemoryMib())})
	}
	sort.Slice(opts, func(i, j int) bool {
		a, b := opts[i], opts[j]
		if in.Goal == GoalCost && a.price != b.price && !math.IsNaN(a.price) && !math.IsNaN(b.price) {
			return a.price < b.price
		}
		if in.Goal == GoalCost && math.IsNaN(a.price) != math.IsNaN(b.price) {
			return !math.IsNaN(a.price)
		}
		if a.mem != b.mem {
			return a.mem > b.mem
		}
		return a.t < b.t
	})
	var out []string
	for i, o := range opts {
		if i == maxCandidateTypes {
			break
		}
		out = append(out, o.t)
	}
	sort.Strings(unfit)
	how := "the instance types with the most GPU memory"
	if in.Goal == GoalCost {
		how = "the cheapest instance types by $/hour"
	}
	note := fmt.Sprintf("instance types chosen from the fleet (%s, at most %d): %s", how, maxCandidateTypes, strings.Join(out, ", "))
	if len(unfit) > 0 {
		note += "; too small for the model: " + strings.Join(unfit, ", ")
	}
	return out, append(notes, note)
}

// defaultFramework is the framework used when the request names none: the
// built-in simulator on simulated GPUs, vLLM on real ones.
func defaultFramework(a *pb.Agent) string {
	if a.GetGpus().GetSource() == "simulated" {
		return "SIMULATOR"
	}
	return "VLLM"
}

// frameworkImage is the DeploymentConfiguration.ImageUri shown for a
// framework: the server image a SageMaker deployment would use, or the
// perfleet simulator.
func frameworkImage(fw string) string {
	switch fw {
	case "VLLM":
		return "vllm/vllm-openai:latest"
	case "SGLANG":
		return "lmsysorg/sglang:latest"
	case "LMI":
		return "deepjavalibrary/djl-serving:0.33.0-lmi"
	default:
		return "perfleet-agent simulate"
	}
}

// dataParallel reports whether a framework serves several copies of a model
// from one server.
func dataParallel(fw string) bool {
	return fw == "VLLM" || fw == "SGLANG" || fw == "SIMULATOR"
}

// chooseParallelism picks the tensor-parallel degree and the copies per
// instance: the lowest-latency layout (all GPUs in one copy) for the TTFT
// goal, the most copies of the smallest degree that fits for throughput and
// cost (tensor parallelism speeds a copy up by less than its GPU count, so
// more copies give more tokens per GPU). It explains the choice, or why
// nothing fits.
func chooseParallelism(goal, fw string, a *pb.Agent, weightsGiB float64) (tp, copies int, why string, ok bool) {
	gpus := int(a.GetGpus().GetCount())
	memGiB := float64(a.GetGpus().GetMemoryMib()) / 1024
	gpuDesc := fmt.Sprintf("%d x %s (%.0f GiB)", gpus, a.GetGpus().GetModel(), memGiB)
	if gpus == 0 {
		return 0, 0, fmt.Sprintf("agent %s reports no GPUs", a.GetAgentId()), false
	}
	fits := fittingDegrees(a, weightsGiB)
	if len(fits) == 0 {
		return 0, 0, fmt.Sprintf("the model's weights (~%.0f GiB) do not fit %s: even split %d ways a shard leaves under %.0f%% of a GPU for the KV cache",
			weightsGiB, gpuDesc, min(gpus, 8), 100*(1-weightsHeadroom)), false
	}
	size := "model size unknown, so the smallest layout is assumed to fit"
	if weightsGiB > 0 {
		size = fmt.Sprintf("weights ~%.0f GiB fit at tensor parallel %d (%.1f GiB per GPU of %.0f)", weightsGiB, fits[0], weightsGiB/float64(fits[0]), memGiB)
	}
	switch {
	case goal == GoalTTFT:
		tp = fits[len(fits)-1]
		copies = gpus / tp
		if !dataParallel(fw) {
			copies = 1
		}
		why = fmt.Sprintf("%s; %s: for the lowest time to first token each copy gets the most GPUs (tensor parallel %d)", gpuDesc, size, tp)
	case !dataParallel(fw):
		tp, copies = fits[len(fits)-1], 1
		why = fmt.Sprintf("%s; %s: %s serves one copy per server, so it spans tensor parallel %d", gpuDesc, size, fw, tp)
	default:
		tp = fits[0]
		copies = gpus / tp
		why = fmt.Sprintf("%s; %s: %d copies of tensor parallel %d give the most tokens per GPU once the batch is full (tensor parallelism scales sub-linearly)",
			gpuDesc, size, copies, tp)
	}
	return tp, copies, why, true
}

// paramsRE finds a parameter count such as "8b", "70B", "8x7b" or "1.5b"
// in a model name.
var paramsRE = regexp.MustCompile(`(?i)(?:^|[^a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)b(?:$|[^a-z0-9])`)

// modelWeightsGiB estimates a model's BF16 weights from the parameter count
// in its name (2 bytes per parameter), and says how it got the figure.
func modelWeightsGiB(uri string) (float64, string) {
	name := strings.TrimRight(uri, "/")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	m := paramsRE.FindStringSubmatch(strings.ReplaceAll(name, "_", "-"))
	if m == nil {
		return 0, fmt.Sprintf("model size: no parameter count in the name %q; every layout is assumed to fit", name)
	}
	params, _ := strconv.ParseFloat(m[2], 64)
	if m[1] != "" {
		experts, _ := strconv.ParseFloat(m[1], 64)
		params *= experts
	}
	gib := params * 1e9 * 2 / (1 << 30)
	return gib, fmt.Sprintf("model size: %sB parameters from the name %q, ~%.0f GiB of BF16 weights", strconv.FormatFloat(params, 'f', -1, 64), name, gib)
}

// applyOptimizations records what optimize_model does for a candidate:
// only what the framework really supports runs, everything else is listed
// as not applied with the reason.
func applyOptimizations(c *pb.RecommendationCandidate, in planInput, fw string) {
	if !in.OptimizeModel {
		return
	}
	switch {
	case fw == "VLLM" && in.Goal == GoalThroughput:
		cfg := map[string]string{"method": "ngram", "num_speculative_tokens": "4", "prompt_lookup_max": "4"}
		c.OptimizationDetails = append(c.OptimizationDetails, &pb.OptimizationDetail{OptimizationType: "SpeculativeDecoding", OptimizationConfig: cfg})
		c.NotApplied = append(c.NotApplied, "SpeculativeDecoding (EAGLE-3 draft model): perfleet does not train draft models; n-gram prompt lookup, which needs none, is used instead")
	case in.Goal == GoalThroughput:
		c.NotApplied = append(c.NotApplied, fmt.Sprintf("SpeculativeDecoding: not supported by perfleet for %s", fw))
	}
	if in.Goal == GoalTTFT {
		c.NotApplied = append(c.NotApplied, fmt.Sprintf("KernelTuning: perfleet has no kernel-tuning step for %s", fw))
	}
}

// speculativeArgs returns the vLLM flags of an applied speculative-decoding
// optimization.
func speculativeArgs(c *pb.RecommendationCandidate) []string {
	for _, o := range c.GetOptimizationDetails() {
		if o.GetOptimizationType() != "SpeculativeDecoding" {
			continue
		}
		cfg := o.GetOptimizationConfig()
		keys := make([]string, 0, len(cfg))
		for k := range cfg {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			v := cfg[k]
			if _, err := strconv.Atoi(v); err != nil {
				v = strconv.Quote(v)
			}
			parts = append(parts, strconv.Quote(k)+":"+v)
		}
		return []string{"--speculative-config", "{" + strings.Join(parts, ",") + "}"}
	}
	return nil
}

// weightFile reports whether a checkpoint file holds weights.
func weightFile(key string) bool {
	for _, ext := range []string{".safetensors", ".bin", ".pt", ".pth", ".gguf"} {
		if strings.HasSuffix(key, ext) {
			return true
		}
	}
	return false
}

// checkpointGiB sums the weight files of a listed checkpoint; 0 when it
// holds none.
func checkpointGiB(files []resultstore.Object) (float64, int) {
	var bytes int64
	n := 0
	for _, f := range files {
		if weightFile(f.Key) {
			bytes += f.Size
			n++
		}
	}
	return float64(bytes) / (1 << 30), n
}
