// Command harness is `make bench`: it runs perfleet's benchmarks beside
// its peers (vegeta as a Go tool, wrk from Debian) against servers with
// known timing (a plain Go server, nginx with the echo module), then the
// coordinator's own benchmarks (distributed overhead, leader merge cost,
// Raft, membership), and regenerates the generated part of
// bench/RESULTS.md with the date, the machine, every command, the raw
// figures, the ratios against the peers measured in the same run, and SVG
// plots under bench/plots/.
//
//	go run ./bench/harness [-quick] [-out bench/RESULTS.md] [-bin bin]
//
// BENCH_QUICK=1 (or -quick) is CI's profile: every section runs, briefly,
// to show the harness works; its figures mean nothing and it writes its
// report under the scratch directory unless -out is given. A section that
// fails is reported as failed in the results and makes the command exit 1
// after the others have run.
//
// bench/run.sh (what `make bench` runs) installs wrk, nginx-light and
// libnginx-mod-http-echo when they are missing.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "CI's short profile (also BENCH_QUICK=1)")
	out := flag.String("out", "", "results file to regenerate (default bench/RESULTS.md; -quick: $SCRATCH/RESULTS.md)")
	plots := flag.String("plots", "", "directory for the SVG plots (default: plots/ beside -out)")
	bin := flag.String("bin", "bin", "directory with the perfleet and perfleet-agent binaries (make build)")
	keep := flag.Bool("keep", false, "keep the scratch directory")
	only := flag.String("only", "", "comma-separated sections to run (loadgen,streams,dist,merge,raft,gossip); others are reported as not run")
	flag.Parse()

	root, err := os.Getwd()
	must(err)
	scratch, err := os.MkdirTemp("", "perfleet-bench-")
	must(err)
	if !*keep {
		defer os.RemoveAll(scratch)
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "RESULTS.md")
		if *quick {
			*out = filepath.Join(scratch, "RESULTS.md")
		}
	}
	if *plots == "" {
		*plots = filepath.Join(filepath.Dir(*out), "plots")
	}
	absBin, _ := filepath.Abs(*bin)
	logf, err := os.Create(filepath.Join(scratch, "bench.log"))
	must(err)
	h := &harness{quick: *quick, root: root, bin: absBin, tools: filepath.Join(scratch, "bin"), scratch: scratch,
		log: io.MultiWriter(logf, os.Stderr)}
	rep := &report{Start: time.Now().UTC(), LoadBefore: loadavg(), Quick: *quick}
	rep.CPU, rep.Cores, rep.Kernel = machine()
	rep.Go = strings.TrimSpace(strings.TrimPrefix(version("go version", "go", "version"), "go version "))

	for _, b := range []string{"perfleet", "perfleet-agent"} {
		if _, err := os.Stat(filepath.Join(absBin, b)); err != nil {
			fatal("%s not found in %s: run make build first (make bench does)", b, absBin)
		}
	}
	for _, need := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(need); err != nil {
			fatal("%s is not installed: run make bench (bench/run.sh installs wrk, nginx-light and libnginx-mod-http-echo)", need)
		}
	}
	h.logf("== building the benchmark programs and vegeta into %s", h.tools)
	for _, b := range []string{"loadgen", "loadgen/server"} {
		if err := h.build(b); err != nil {
			fatal("%v", err)
		}
	}
	if _, err := h.run(nil, "go", "build", "-C", "bench/tools", "-o", filepath.Join(h.tools, "vegeta"), "github.com/tsenart/vegeta/v12"); err != nil {
		fatal("building vegeta from bench/tools/go.mod: %v", err)
	}
	h.cmds = h.cmds[:0] // the report lists the measuring commands, not the builds
	rep.Vegeta = vegetaVersion(root)
	if f := strings.Fields(version("wrk", "wrk", "-v")); len(f) >= 2 {
		rep.Wrk = "wrk " + strings.TrimPrefix(f[1], "debian/")
	}
	rep.Nginx = strings.TrimPrefix(version("nginx version", "nginx", "-v"), "nginx version: ")

	run := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, s := range strings.Split(*only, ",") {
			if s == name {
				return true
			}
		}
		return false
	}
	section := func(name string, f func()) {
		if !run(name) {
			rep.Skipped = append(rep.Skipped, name)
			return
		}
		h.logf("== %s", name)
		start := time.Now()
		f()
		rep.Timings = append(rep.Timings, [2]string{name, time.Since(start).Round(time.Second).String()})
	}

	section("loadgen", func() {
		ts, stop, err := h.targets()
		defer stop()
		if err != nil {
			h.fail("targets", err)
			return
		}
		rep.Targets = ts
		body := filepath.Join(scratch, "body.json")
		must(os.WriteFile(body, []byte(requestBody), 0o644))
		rep.MaxRate = []maxRateResult{h.maxRate(ts["go-fixed"], body), h.maxRate(ts["ngx-fixed"], body)}
		rate := pick(h, 5000.0, 1000.0)
		rep.Fixed = []fixedRateResult{h.fixedRate(ts["go-10ms"], body, rate), h.fixedRate(ts["ngx-10ms"], body, rate),
			h.fixedRate(ts["go-fixed"], body, rate)}
		rep.Sweep = h.sweep(ts["go-fixed"], body)
		rep.SSE = h.sseFidelity(ts["ngx-sse"])
	})
	section("streams", func() { rep.Streams = h.streams() })
	section("dist", func() { d := h.distributed(); rep.Dist = &d })
	section("merge", func() { m := h.mergeCost(); rep.Merge = &m })
	section("raft", func() { r := h.raft(); rep.Raft = &r })
	section("gossip", func() { g := h.membership(); rep.Gossip = &g })

	rep.End = time.Now().UTC()
	rep.LoadAfter = loadavg()
	rep.Commands = h.cmds
	for _, f := range rep.failures() {
		h.fail("figures", fmt.Errorf("%s", f))
	}
	rep.Failures = h.fails
	must(os.MkdirAll(*plots, 0o755))
	relPlots, _ := filepath.Rel(filepath.Dir(*out), *plots)
	for name, svg := range rep.plots(relPlots) {
		must(os.WriteFile(filepath.Join(*plots, name), []byte(svg), 0o644))
	}
	must(writeGenerated(*out, rep.markdown(relPlots)))
	fmt.Fprintf(os.Stderr, "bench: wrote %s and %s (%s)\n", *out, *plots, rep.End.Sub(rep.Start).Round(time.Second))
	if len(h.fails) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d failure(s):\n  %s\n", len(h.fails), strings.Join(h.fails, "\n  "))
		if !*keep {
			fmt.Fprintf(os.Stderr, "bench: rerun with -keep to keep the log (%s)\n", filepath.Join(scratch, "bench.log"))
		}
		os.Exit(1)
	}
}

func vegetaVersion(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "bench", "tools", "go.mod"))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "github.com/tsenart/vegeta/v12" {
			return f[1]
		}
	}
	return "?"
}

func must(err error) {
	if err != nil {
		fatal("%v", err)
	}
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
