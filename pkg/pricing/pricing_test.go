package pricing

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

var testRegions = []string{"us-east-1", "us-west-2", "eu-west-1"}

// TestBuiltinCoversEnum checks that every AIRecommendationInstanceType of
// the SageMaker SDK in go.mod, and nothing else, is in the built-in table
// with GPUs and a price in each region.
func TestBuiltinCoversEnum(t *testing.T) {
	var enum []string
	for _, v := range types.AIRecommendationInstanceType("").Values() {
		enum = append(enum, string(v))
	}
	slices.Sort(enum)
	if got := InstanceTypes(); !slices.Equal(got, enum) {
		t.Fatalf("InstanceTypes() = %v\nSDK enum      = %v", got, enum)
	}
	c := Default()
	for _, typ := range enum {
		model, gpus, ok := c.Info(typ)
		if !ok || gpus <= 0 {
			t.Errorf("Info(%s) = %q, %d, %v", typ, model, gpus, ok)
		}
		if canon, known := CanonicalGPU(model); !known || canon != model {
			t.Errorf("%s: GPU model %q is not canonical (%q, %v)", typ, model, canon, known)
		}
		if _, ok := defaultGPUHour[model]; !ok {
			t.Errorf("%s: no built-in $/GPU-hour for %s", typ, model)
		}
		var east float64
		for _, r := range testRegions {
			e, err := c.Lookup(typ, r, "", 0)
			if err != nil {
				t.Fatalf("Lookup(%s, %s): %v", typ, r, err)
			}
			if e.USDPerHour <= 0 || e.Region != r || e.AsOf != CatalogDate || e.GPUs != gpus || e.GPUModel != model ||
				!strings.HasPrefix(e.Source, "built-in SageMaker on-demand ") || !strings.Contains(e.Source, ", "+r+", as of "+CatalogDate) {
				t.Errorf("Lookup(%s, %s) = %+v", typ, r, e)
			}
			switch r {
			case "us-east-1":
				east = e.USDPerHour
			case "us-west-2":
				if e.USDPerHour != east {
					t.Errorf("%s: us-west-2 $%v, us-east-1 $%v", typ, e.USDPerHour, east)
				}
			case "eu-west-1":
				if ratio := e.USDPerHour / east; ratio < 1.10 || ratio > 1.15 {
					t.Errorf("%s: eu-west-1 is %.3f × us-east-1", typ, ratio)
				}
			}
		}
	}
}

// TestBuiltinHardware pins the GPUs of a few types.
func TestBuiltinHardware(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		model string
		gpus  int
	}{
		{"ml.g5.12xlarge", "A10G", 4},
		{"ml.g5.48xlarge", "A10G", 8},
		{"ml.g6.xlarge", "L4", 1},
		{"ml.g6e.24xlarge", "L40S", 4},
		{"ml.g7e.12xlarge", "RTX-PRO-6000-96GB", 2},
		{"ml.g7e.48xlarge", "RTX-PRO-6000-96GB", 8},
		{"ml.p3.2xlarge", "V100-16GB", 1},
		{"ml.p4d.24xlarge", "A100-40GB", 8},
		{"ml.p4de.24xlarge", "A100-80GB", 8},
		{"ml.p5.4xlarge", "H100-80GB", 1},
		{"ml.p5.48xlarge", "H100-80GB", 8},
		{"ml.p5e.48xlarge", "H200-141GB", 8},
		{"ml.p5en.48xlarge", "H200-141GB", 8},
	} {
		model, gpus, ok := Default().Info(tc.typ)
		if !ok || model != tc.model || gpus != tc.gpus {
			t.Errorf("Info(%s) = %s x%d %v, want %s x%d", tc.typ, model, gpus, ok, tc.model, tc.gpus)
		}
	}
	if _, _, ok := Default().Info("lab-8xH100"); ok {
		t.Error("Info knows an on-prem class")
	}
}

func TestLookupOrder(t *testing.T) {
	c := Default()
	c.Set("ml.g5.xlarge", "", 1.0)
	c.Set("ml.g5.xlarge", "eu-west-1", 2.0)
	c.Set("lab-8xH100", "", 14)
	c.SetGPUHour("NVIDIA L4", 0.5)
	for _, tc := range []struct {
		name           string
		typ, region    string
		gpuModel       string
		gpus           int
		wantUSD        float64
		wantRegion     string
		wantGPUs       int
		wantModel      string
		wantSource     string
		wantAsOfFilled bool
	}{
		{"override for the region", "ml.g5.xlarge", "eu-west-1", "", 0, 2, "eu-west-1", 1, "A10G", "override (set programmatically), eu-west-1", false},
		{"override for every region", "ml.g5.xlarge", "us-east-1", "", 0, 1, "", 1, "A10G", "override (set programmatically), any region", false},
		{"override without a region", "ml.g5.xlarge", "", "", 0, 1, "", 1, "A10G", "override (set programmatically), any region", false},
		{"built-in", "ml.g5.2xlarge", "us-west-2", "", 0, 1.515, "us-west-2", 1, "A10G", "built-in SageMaker on-demand list price, us-west-2, as of " + CatalogDate, true},
		{"built-in hardware wins over the agent's", "ml.g5.12xlarge", "us-east-1", "NVIDIA L4", 1, 7.09, "us-east-1", 4, "A10G", "built-in SageMaker on-demand list price, us-east-1", true},
		{"region fallback", "ml.g5.12xlarge", "ap-south-1", "", 0, 7.09, "us-east-1", 4, "A10G", "us-east-1 (no built-in figure for ap-south-1)", true},
		{"no region", "ml.g5.12xlarge", "", "", 0, 7.09, "us-east-1", 4, "A10G", "us-east-1 (no region given)", true},
		{"estimate", "ml.g7e.2xlarge", "us-east-1", "", 0, 4.20, "us-east-1", 1, "RTX-PRO-6000-96GB", "built-in SageMaker on-demand estimate, us-east-1", true},
		{"on-prem class price", "lab-8xH100", "us-east-1", "NVIDIA H100 80GB HBM3", 8, 14, "", 8, "H100-80GB", "override (set programmatically), any region", false},
		{"on-prem built-in GPU-hour", "lab-2xH100", "us-east-1", "NVIDIA H100 80GB HBM3", 2, 4.2, "", 2, "H100-80GB", "on-prem: 2 x H100-80GB at $2.10/GPU-hour (built-in estimate as of " + CatalogDate + ")", true},
		{"on-prem GPU-hour override", "lab-4xL4", "us-east-1", "l4", 4, 2, "", 4, "L4", "on-prem: 4 x L4 at $0.50/GPU-hour (set programmatically)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := c.Lookup(tc.typ, tc.region, tc.gpuModel, tc.gpus)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(e.USDPerHour-tc.wantUSD) > 1e-9 || e.Region != tc.wantRegion || e.GPUs != tc.wantGPUs || e.GPUModel != tc.wantModel ||
				e.Key != tc.typ || !strings.Contains(e.Source, tc.wantSource) || (e.AsOf != "") != tc.wantAsOfFilled {
				t.Errorf("got %+v", e)
			}
		})
	}
}

func TestLookupWithoutPrice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      string
		gpuModel string
		gpus     int
		want     []string
	}{
		{"unknown GPU", "lab-x", "Mystery GPU", 2, []string{`instance type "lab-x"`, `2 x "Mystery GPU"`,
			"`instances: {\"lab-x\": {usd_per_hour: N}}`", "`gpu_hour_usd: {\"Mystery GPU\": N}`", "pricing file"}},
		{"known GPU without a default", "lab-gh", "NVIDIA GH200 480GB", 1, []string{`"lab-gh"`, `"NVIDIA GH200 480GB"`, "gpu_hour_usd"}},
		{"no GPUs", "cpu-box", "", 0, []string{`"cpu-box" (no GPUs reported)`, "instances:"}},
		{"no GPU count", "lab-y", "H100", 0, []string{`0 x "H100"`, "instances:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Default().Lookup(tc.typ, "us-east-1", tc.gpuModel, tc.gpus)
			if !errors.Is(err, ErrNoPrice) {
				t.Fatalf("err = %v, want ErrNoPrice", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %s", err, w)
				}
			}
			if tc.gpus == 0 && strings.Contains(err.Error(), "gpu_hour_usd") {
				t.Errorf("%v: suggests gpu_hour_usd without a GPU count", err)
			}
		})
	}
}

func TestCanonicalGPU(t *testing.T) {
	for _, tc := range []struct {
		name  string
		want  string
		known bool
	}{
		{"NVIDIA H100 80GB HBM3", "H100-80GB", true},
		{"H100", "H100-80GB", true},
		{"h100-80gb", "H100-80GB", true},
		{"H100-SXM", "H100-80GB", true},
		{"NVIDIA H100 PCIe", "H100-80GB", true},
		{"NVIDIA H200", "H200-141GB", true},
		{"H200-141GB", "H200-141GB", true},
		{"NVIDIA A100-SXM4-80GB", "A100-80GB", true},
		{"NVIDIA A100-SXM4-40GB", "A100-40GB", true},
		{"A100", "A100-80GB", true},
		{"NVIDIA L4", "L4", true},
		{"L4-24GB", "L4", true},
		{"NVIDIA L40S", "L40S", true},
		{"NVIDIA A10G", "A10G", true},
		{"Tesla V100-SXM2-16GB", "V100-16GB", true},
		{"Tesla T4", "T4", true},
		{"NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000-96GB", true},
		{"NVIDIA-RTX-PRO-4500-Blackwell-Server-Edition", "RTX-PRO-4500-32GB", true},
		{"NVIDIA B200", "B200-180GB", true},
		{"NVIDIA GH200 480GB", "GH200-480GB", false},
		{"NVIDIA L40", "L40", false},
		{"AMD Instinct MI300X", "AMD-INSTINCT-MI300X", false},
		{"  ", "", false},
	} {
		if got, known := CanonicalGPU(tc.name); got != tc.want || known != tc.known {
			t.Errorf("CanonicalGPU(%q) = %q, %v; want %q, %v", tc.name, got, known, tc.want, tc.known)
		}
	}
}

func TestDefaultGPUHour(t *testing.T) {
	for _, model := range []string{"H100-80GB", "H200-141GB", "A100-80GB", "L40S", "A10G", "L4"} {
		e, err := Default().Lookup("lab", "", model, 1)
		if err != nil || e.USDPerHour <= 0 || !strings.Contains(e.Source, "built-in estimate") {
			t.Errorf("%s: %+v, %v", model, e, err)
		}
	}
	for model := range defaultGPUHour {
		if canon, known := CanonicalGPU(model); !known || canon != model {
			t.Errorf("default $/GPU-hour key %q is not canonical", model)
		}
	}
}

func writeFile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, `# lab prices
gpu_hour_usd:            # on-prem $/GPU-hour by GPU model
  H100-80GB: 2.5
  NVIDIA L4: 0.35
  AMD Instinct MI300X: 1.75
instances:               # overrides or additions
  lab-8xH100: {usd_per_hour: 14.0}
  ml.g5.12xlarge: {region: us-east-1, usd_per_hour: 6.50}
  ml.g6.12xlarge:
    - {region: us-east-1, usd_per_hour: 5}
    - {region: eu-west-1, usd_per_hour: 5.5}
    - {usd_per_hour: 6}
`)
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, region, gpuModel string
		gpus                  int
		wantUSD               float64
		wantSource            string
	}{
		{"lab-8xH100", "us-east-1", "H100", 8, 14, "override from pricing file " + path + ", any region"},
		{"lab-4xH100", "us-east-1", "NVIDIA H100 80GB HBM3", 4, 10, "on-prem: 4 x H100-80GB at $2.50/GPU-hour (pricing file " + path + ")"},
		{"lab-2xL4", "us-east-1", "L4", 2, 0.7, "on-prem: 2 x L4 at $0.35/GPU-hour (pricing file " + path + ")"},
		{"lab-mi300", "us-east-1", "amd instinct mi300x", 8, 14, "on-prem: 8 x AMD Instinct MI300X at $1.75/GPU-hour"},
		{"ml.g5.12xlarge", "us-east-1", "", 0, 6.5, "override from pricing file " + path + ", us-east-1"},
		{"ml.g5.12xlarge", "us-west-2", "", 0, 7.09, "built-in SageMaker"},
		{"ml.g6.12xlarge", "eu-west-1", "", 0, 5.5, "eu-west-1"},
		{"ml.g6.12xlarge", "us-west-2", "", 0, 6, "any region"},
	} {
		e, err := c.Lookup(tc.typ, tc.region, tc.gpuModel, tc.gpus)
		if err != nil || math.Abs(e.USDPerHour-tc.wantUSD) > 1e-9 || !strings.Contains(e.Source, tc.wantSource) || e.AsOf != "" && !strings.HasPrefix(e.Source, "built-in") {
			t.Errorf("Lookup(%s, %s) = %+v, %v; want $%v from %q", tc.typ, tc.region, e, err, tc.wantUSD, tc.wantSource)
		}
	}

	// JSON is YAML; a later load replaces earlier figures.
	if err := c.Load([]byte(`{"gpu_hour_usd": {"h100": 3}, "instances": {"lab-8xH100": {"usd_per_hour": 15}}}`)); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.Lookup("lab-8xH100", "", "", 0); e.USDPerHour != 15 || e.Source != "override from pricing file, any region" {
		t.Errorf("after JSON: %+v", e)
	}
	if e, _ := c.Lookup("lab-1xH100", "", "H100-SXM", 1); e.USDPerHour != 3 {
		t.Errorf("after JSON: %+v", e)
	}
	for _, empty := range []string{"", "# nothing yet\n", "---\n", "{}", "gpu_hour_usd: {}\ninstances: {}\n"} {
		if err := c.Load([]byte(empty)); err != nil {
			t.Errorf("Load(%q): %v", empty, err)
		}
	}
	if err := c.LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level key", "gpus: {H100: 1}\n",
			[]string{`line 1: unknown key "gpus" (want gpu_hour_usd or instances)`}},
		{"unknown instance key", "instances:\n  lab-8xH100: {usd: 14}\n",
			[]string{`line 2: instances.lab-8xH100: unknown key "usd" (want region or usd_per_hour)`, "usd_per_hour is required"}},
		{"negative instance price", "instances:\n  lab-8xH100: {usd_per_hour: -1}\n",
			[]string{"line 2: instances.lab-8xH100.usd_per_hour: must be a non-negative number of US dollars, got -1"}},
		{"NaN GPU-hour", "gpu_hour_usd:\n  H100: .nan\n",
			[]string{"line 2: gpu_hour_usd.H100: must be a non-negative number of US dollars, got .nan"}},
		{"infinite GPU-hour", "gpu_hour_usd: {L4: .inf}\n",
			[]string{"gpu_hour_usd.L4: must be a non-negative number", "got .inf"}},
		{"price as text", "gpu_hour_usd: {L4: cheap}\n",
			[]string{`gpu_hour_usd.L4: must be a non-negative number of US dollars, got "cheap"`}},
		{"missing price", "instances:\n  lab: {region: us-east-1}\n",
			[]string{"line 2: instances.lab: usd_per_hour is required"}},
		{"two spellings of one GPU", "gpu_hour_usd:\n  H100: 2\n  NVIDIA H100 80GB HBM3: 2.2\n",
			[]string{`line 3: gpu_hour_usd: "H100" and "NVIDIA H100 80GB HBM3" are both GPU model H100-80GB`}},
		{"duplicate key", "instances:\n  lab: {usd_per_hour: 1}\n  lab: {usd_per_hour: 2}\n",
			[]string{`line 3: instances: duplicate key "lab"`}},
		{"region twice", "instances:\n  lab:\n    - {region: us-east-1, usd_per_hour: 1}\n    - {region: us-east-1, usd_per_hour: 2}\n",
			[]string{"line 4: instances.lab[1]: lab is priced twice for us-east-1"}},
		{"section not a mapping", "instances: [a, b]\n",
			[]string{"line 1: instances: must be a mapping", "got a list"}},
		{"document not a mapping", "- 1\n",
			[]string{"line 1: must be a mapping (gpu_hour_usd, instances), got a list"}},
		{"bad YAML", "instances:\n  lab: {usd_per_hour: 1\n",
			[]string{"invalid pricing file: yaml: line"}},
		{"bad JSON", `{"instances": {"lab": {"usd_per_hour": 1}}`,
			[]string{"invalid pricing file: yaml:"}},
		{"two documents", "instances: {}\n---\ninstances: {}\n",
			[]string{"more than one YAML document"}},
		{"every problem reported", "gpus: 1\ninstances:\n  a: {usd_per_hour: -2}\n",
			[]string{`line 1: unknown key "gpus"`, "; line 3: instances.a.usd_per_hour"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.doc)
			c := Default()
			err := c.LoadFile(path)
			if err == nil {
				t.Fatalf("no error for %q", tc.doc)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("%v: does not name the file", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			// A rejected file changes nothing.
			if e, _ := c.Lookup("ml.g5.12xlarge", "us-east-1", "", 0); e.USDPerHour != 7.09 {
				t.Errorf("catalog changed: %+v", e)
			}
		})
	}

	// A valid section next to an invalid one is not applied either.
	c := Default()
	if err := c.Load([]byte("gpu_hour_usd: {H100: 9}\ninstances: {lab: {usd_per_hour: -1}}\n")); err == nil {
		t.Fatal("no error")
	}
	if e, _ := c.Lookup("lab", "", "H100", 1); e.USDPerHour != 2.10 {
		t.Errorf("partial load applied: %+v", e)
	}
}

func TestSetRejectsBadPrices(t *testing.T) {
	for _, usd := range []float64{-1, math.NaN(), math.Inf(1)} {
		for name, set := range map[string]func(){
			"Set":        func() { Default().Set("lab", "", usd) },
			"SetGPUHour": func() { Default().SetGPUHour("L4", usd) },
		} {
			func() {
				defer func() {
					if r := recover(); r == nil || !strings.Contains(r.(string), "non-negative") {
						t.Errorf("%s(%v): recovered %v", name, usd, r)
					}
				}()
				set()
			}()
		}
	}
}

func TestCosts(t *testing.T) {
	// ml.g5.12xlarge at $7.09/hour producing 1,000 tokens/s makes 3.6M
	// tokens an hour: $7.09 / 3.6 = $1.969444… per 1M tokens.
	e := Entry{USDPerHour: 7.09}
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"$/1M tokens", e.CostPerMillionTokens(1000), 7.09 / 3.6},
		{"$/1M tokens, round figures", Entry{USDPerHour: 3.6}.CostPerMillionTokens(1000), 1},
		{"$/1M tokens, on-prem 8 x $2.10", Entry{USDPerHour: 16.8}.CostPerMillionTokens(2500), 16.8 / 9},
		{"$/request", Entry{USDPerHour: 3.6}.CostPerRequest(2), 0.0005},
		{"$/request at 0.5 req/s", e.CostPerRequest(0.5), 7.09 / 1800},
	} {
		if math.Abs(tc.got-tc.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	for _, zero := range []float64{0, -1, math.NaN()} {
		if !math.IsInf(e.CostPerMillionTokens(zero), 1) || !math.IsInf(e.CostPerRequest(zero), 1) {
			t.Errorf("throughput %v: not +Inf", zero)
		}
	}
}

func TestDollars(t *testing.T) {
	for in, want := range map[float64]string{2.1: "2.10", 14: "14.00", 0.035: "0.035", 0.5: "0.50", 113.07: "113.07"} {
		if got := dollars(in); got != want {
			t.Errorf("dollars(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestConcurrentUse is for the race detector.
func TestConcurrentUse(t *testing.T) {
	c := Default()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				switch i % 4 {
				case 0:
					c.Set("lab", "", float64(i))
				case 1:
					c.SetGPUHour("H100", 2)
				case 2:
					if err := c.Load([]byte("instances: {ml.g5.xlarge: {region: us-east-1, usd_per_hour: 1}}")); err != nil {
						t.Error(err)
					}
				default:
					if _, err := c.Lookup("lab", "us-east-1", "H100", 8); err != nil {
						t.Error(err)
					}
					_, _ = c.Lookup("ml.g5.xlarge", "us-east-1", "", 0)
				}
			}
		}()
	}
	wg.Wait()
}
