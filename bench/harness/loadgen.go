package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The load-generator sections: perfleet's engine (bench/loadgen, the same
// executor and HTTP client as `perfleet-agent run`), vegeta and wrk, back to
// back against the same servers.

const (
	nominalDelayMs = 10.0 // the delayed targets' known delay
	sseTTFTMs      = 50.0 // nginx SSE: echo_sleep 0.05 before the first chunk
	sseITLMs       = 10.0 // echo_sleep 0.01 between chunks
	sseTokens      = 16
	conns          = 64 // connections for the maximum-rate runs
)

// target is one server under test.
type target struct {
	Name, URL, Path string
	DelayMs         float64 // known delay (0: none)
}

func (t target) full() string { return t.URL + t.Path }

// measurement is one tool's run against one target.
type measurement struct {
	Tool           string
	Rate           float64 // successful requests/s
	Requests       float64
	Errors         float64
	P50, P99       float64 // ms
	ActP50, ActP99 float64 // perfleet: from the actual send, ms
	LagP99         float64 // perfleet: schedule lag p99, ms
	CPU            float64 // s, the tool's process
	TTFT, ITL, E2E float64 // streaming, ms
	Err            string
}

func (m measurement) cpuPer10k() float64 {
	if m.Requests == 0 {
		return 0
	}
	return m.CPU / m.Requests * 10_000
}

// targets starts the plain Go server (fixed response, and a 10 ms delay)
// and nginx with the echo module (fixed response, echo_sleep 0.01, and an
// SSE stream with known sleeps). It returns them and a stop function.
func (h *harness) targets() (map[string]target, func(), error) {
	var ds []*daemon
	stop := func() {
		for _, d := range ds {
			d.stop()
		}
	}
	goFixed, goDelay, ngx := freePort(), freePort(), freePort()
	for _, s := range [][2]string{{goFixed, "0s"}, {goDelay, "10ms"}} {
		d, err := h.start(filepath.Join(h.tools, "benchserver"), "-addr", s[0], "-delay", s[1])
		if err != nil {
			return nil, stop, err
		}
		ds = append(ds, d)
	}
	prefix := filepath.Join(h.scratch, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, stop, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(prefix, ngx)), 0o644); err != nil {
		return nil, stop, err
	}
	d, err := h.start("nginx", "-p", prefix, "-c", conf, "-g", "daemon off;")
	if err != nil {
		return nil, stop, fmt.Errorf("nginx: %w (make bench installs nginx-light and libnginx-mod-http-echo)", err)
	}
	ds = append(ds, d)
	ts := map[string]target{
		"go-fixed":  {Name: "Go server, fixed response", URL: "http://" + goFixed, Path: "/"},
		"go-10ms":   {Name: "Go server, 10 ms delay", URL: "http://" + goDelay, Path: "/", DelayMs: nominalDelayMs},
		"ngx-fixed": {Name: "nginx, fixed response", URL: "http://" + ngx, Path: "/"},
		"ngx-10ms":  {Name: "nginx echo_sleep 0.01", URL: "http://" + ngx, Path: "/sleep", DelayMs: nominalDelayMs},
		"ngx-sse":   {Name: "nginx echo SSE", URL: "http://" + ngx, Path: "/v1/chat/completions"},
	}
	for _, t := range ts {
		if err := waitHTTP("POST", t.full()); err != nil {
			return nil, stop, err
		}
	}
	return ts, stop, nil
}

// nginxConf is a one-worker nginx (the load generators need the other
// core) serving a fixed JSON answer, the same after echo_sleep 0.01, and an
// OpenAI chat stream: echo_sleep 0.05, then 16 content events, each
// flushed, 10 ms apart (echo_sleep 0.01), then usage and [DONE].
func nginxConf(prefix, addr string) string {
	body := `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`
	var sse strings.Builder
	for i := 0; i < sseTokens; i++ {
		if i > 0 {
			fmt.Fprintf(&sse, "      echo_sleep %g;\n", sseITLMs/1000)
		}
		sse.WriteString("      echo 'data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok\"}}]}';\n      echo;\n      echo_flush;\n")
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // the worker must reach the scratch directory (mode 0700)
	}
	return fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
%[8]sworker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen %[2]s;
    location = / { default_type application/json; return 200 '%[3]s'; }
    location = /sleep { default_type application/json; echo_sleep %[4]g; echo '%[3]s'; }
    location = /v1/chat/completions {
      default_type text/event-stream;
      echo_read_request_body;
      echo_sleep %[5]g;
%[6]s      echo 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":%[7]d}}';
      echo;
      echo 'data: [DONE]';
      echo;
    }
  }
}
`, prefix, addr, body, nominalDelayMs/1000, sseTTFTMs/1000, sse.String(), sseTokens, user)
}

// perfleetRun runs bench/loadgen and reads its JSON line.
func (h *harness) perfleetRun(t target, args ...string) measurement {
	args = append([]string{"-target", t.URL, "-path", t.Path, "-json"}, args...)
	r, err := h.run(nil, filepath.Join(h.tools, "loadgen"), args...)
	m := measurement{Tool: "perfleet", CPU: r.cpu.Seconds()}
	var j struct {
		Rate, OK, Errors float64
		P50              float64 `json:"p50_ms"`
		P99              float64 `json:"p99_ms"`
		TTFT             float64 `json:"time_to_first_token_p50_ms"`
		ITL              float64 `json:"inter_token_latency_p50_ms"`
		ActP50           float64 `json:"actual_send_p50_ms"`
		ActP99           float64 `json:"actual_send_p99_ms"`
		Lag              float64 `json:"lag_p99_ms"`
	}
	if err == nil {
		err = lastJSON(r.out, &j)
	}
	if err != nil {
		m.Err = err.Error()
		return m
	}
	m.Rate, m.Requests, m.Errors, m.P50, m.P99, m.TTFT, m.ITL, m.E2E = j.Rate, j.OK+j.Errors, j.Errors, j.P50, j.P99, j.TTFT, j.ITL, j.P50
	m.ActP50, m.ActP99, m.LagP99 = j.ActP50, j.ActP99, j.Lag
	return m
}

// vegetaRun runs `vegeta attack` (its CPU is the attack's alone) and then
// `vegeta report -type=json` on the saved results.
func (h *harness) vegetaRun(t target, body string, dur time.Duration, attack ...string) measurement {
	m := measurement{Tool: "vegeta"}
	f, err := os.CreateTemp(h.scratch, "vegeta-*.bin")
	if err != nil {
		m.Err = err.Error()
		return m
	}
	f.Close()
	res := f.Name()
	args := append([]string{"attack", "-duration", dur.String(), "-body", body, "-header", "Content-Type: application/json",
		"-output", res}, attack...)
	r, err := h.run(strings.NewReader("POST "+t.full()+"\n"), filepath.Join(h.tools, "vegeta"), args...)
	m.CPU = r.cpu.Seconds()
	if err != nil {
		m.Err = err.Error()
		return m
	}
	rep, err := h.run(nil, filepath.Join(h.tools, "vegeta"), "report", "-type=json", res)
	var j struct {
		Latencies  map[string]float64 `json:"latencies"`
		Requests   float64            `json:"requests"`
		Throughput float64            `json:"throughput"`
		Success    float64            `json:"success"`
	}
	if err == nil {
		err = lastJSON(rep.out, &j)
	}
	if err != nil {
		m.Err = err.Error()
		return m
	}
	m.Rate, m.Requests = j.Throughput, j.Requests
	m.Errors = j.Requests * (1 - j.Success)
	m.P50, m.P99 = j.Latencies["50th"]/1e6, j.Latencies["99th"]/1e6
	m.E2E = m.P50
	return m
}

var (
	wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkN   = regexp.MustCompile(`([0-9]+) requests in`)
	wrkErr = regexp.MustCompile(`(?:Non-2xx or 3xx responses|Socket errors):\s+(.*)`)
	wrkPct = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNum = regexp.MustCompile(`[0-9]+`)
)

// wrkRun runs wrk with a Lua script that POSTs the same body.
func (h *harness) wrkRun(t target, dur time.Duration) measurement {
	m := measurement{Tool: "wrk"}
	lua := filepath.Join(h.scratch, "post.lua")
	_ = os.WriteFile(lua, []byte("wrk.method = \"POST\"\nwrk.body = '"+requestBody+"'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"), 0o644)
	r, err := h.run(nil, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(dur.Seconds()))+"s", "--latency", "-s", lua, t.full())
	m.CPU = r.cpu.Seconds()
	if err != nil {
		m.Err = err.Error()
		return m
	}
	pm := parseWrk(r.out)
	pm.CPU = m.CPU
	return pm
}

// parseWrk reads the rate, request count, errors and p50/p99 from wrk's
// output (with --latency).
func parseWrk(out string) measurement {
	m := measurement{Tool: "wrk"}
	if s := wrkRPS.FindStringSubmatch(out); s != nil {
		m.Rate, _ = strconv.ParseFloat(s[1], 64)
	}
	if s := wrkN.FindStringSubmatch(out); s != nil {
		m.Requests, _ = strconv.ParseFloat(s[1], 64)
	}
	for _, s := range wrkErr.FindAllStringSubmatch(out, -1) {
		for _, f := range wrkNum.FindAllString(s[1], -1) {
			n, _ := strconv.ParseFloat(f, 64)
			m.Errors += n
		}
	}
	for _, s := range wrkPct.FindAllStringSubmatch(out, -1) {
		x, _ := strconv.ParseFloat(s[2], 64)
		x *= map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[s[3]]
		if s[1] == "50" {
			m.P50 = x
		} else {
			m.P99 = x
		}
	}
	if m.Rate == 0 {
		m.Err = "no Requests/sec in wrk's output"
	}
	return m
}

const requestBody = `{"model":"m","prompt":"hi","stream":false}`

// maxRate: each tool flat out with 64 connections, reps times, interleaved
// so that the machine's drift falls on all three.
type maxRateResult struct {
	Target string
	Reps   [][]measurement // per rep: perfleet, vegeta, wrk
}

func (h *harness) maxRate(t target, body string) maxRateResult {
	res := maxRateResult{Target: t.Name}
	dur := pick(h, 5*time.Second, 1*time.Second)
	for rep := 0; rep < pick(h, 3, 1); rep++ {
		row := []measurement{
			h.perfleetRun(t, "-mode", "closed", "-c", strconv.Itoa(conns), "-duration", dur.String()),
			h.vegetaRun(t, body, dur, "-rate", "0", "-workers", strconv.Itoa(conns), "-max-workers", strconv.Itoa(conns), "-keepalive=true"),
			h.wrkRun(t, dur),
		}
		res.Reps = append(res.Reps, row)
	}
	return res
}

// fixedRate: perfleet and vegeta at one constant rate (wrk has no
// constant-rate mode; wrk2 has, but is not packaged).
type fixedRateResult struct {
	Target  target
	Rate    float64
	Reps    [][]measurement // per rep: perfleet, vegeta
	Release bool
}

func (h *harness) fixedRate(t target, body string, rate float64) fixedRateResult {
	res := fixedRateResult{Target: t, Rate: rate}
	dur := pick(h, 5*time.Second, 1*time.Second)
	rs := strconv.FormatFloat(rate, 'f', 0, 64)
	for rep := 0; rep < pick(h, 3, 1); rep++ {
		res.Reps = append(res.Reps, []measurement{
			h.perfleetRun(t, "-mode", "open", "-rate", rs, "-c", "0", "-duration", dur.String()),
			h.vegetaRun(t, body, dur, "-rate", rs, "-keepalive=true"),
		})
	}
	return res
}

// sweep: achieved rate and latency against the target rate.
type sweepPoint struct {
	Target   float64
	Perfleet measurement
	Vegeta   measurement
}

func (h *harness) sweep(t target, body string) []sweepPoint {
	var out []sweepPoint
	dur := pick(h, 3*time.Second, 1*time.Second)
	for _, r := range pick(h, []float64{1000, 2000, 5000, 10000, 20000, 40000}, []float64{1000, 4000}) {
		rs := strconv.FormatFloat(r, 'f', 0, 64)
		out = append(out, sweepPoint{Target: r,
			Perfleet: h.perfleetRun(t, "-mode", "open", "-rate", rs, "-c", "0", "-duration", dur.String()),
			Vegeta:   h.vegetaRun(t, body, dur, "-rate", rs, "-keepalive=true"),
		})
	}
	return out
}

// streaming fidelity against nginx's SSE stream: the reference reader
// (raw socket, timestamps each read), perfleet's OpenAI client and vegeta
// (E2E only), each at about one stream at a time so that nginx's timers
// see the same load from each.
type sseResult struct {
	Reps [][]measurement // per rep: reference, perfleet, vegeta
}

func (h *harness) sseFidelity(t target) sseResult {
	var res sseResult
	dur := pick(h, 8*time.Second, 2*time.Second)
	body := filepath.Join(h.scratch, "sse-body.json")
	_ = os.WriteFile(body, []byte(fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":%d,"stream":true}`, sseTokens)), 0o644)
	for rep := 0; rep < pick(h, 3, 1); rep++ {
		// The three run at the same time, so that the server's timer
		// behaviour, which drifts from run to run, is the same for each.
		row := make([]measurement, 3)
		var wg sync.WaitGroup
		for i, f := range []func() measurement{
			func() measurement {
				m := h.perfleetRun(t, "-mode", "sse-raw", "-rate", "4", "-tokens", strconv.Itoa(sseTokens), "-duration", dur.String())
				m.Tool = "reference reader"
				return m
			},
			func() measurement {
				return h.perfleetRun(t, "-mode", "sse", "-rate", "4", "-c", "0", "-tokens", strconv.Itoa(sseTokens), "-duration", dur.String())
			},
			func() measurement { return h.vegetaRun(t, body, dur, "-rate", "4", "-keepalive=true") },
		} {
			wg.Add(1)
			go func() { defer wg.Done(); row[i] = f() }()
		}
		wg.Wait()
		res.Reps = append(res.Reps, row)
	}
	return res
}

// streams: concurrent SSE streams against llmsim at 20 ms ITL, a ladder
// of stream counts.
type streamRow struct {
	Streams                       int
	ChunksPerS, IdealPerS         float64
	P50, P99                      float64 // client chunk stamp − llmsim send stamp, ms
	Errors                        float64
	HeapPer1k, RSSPer1k, SimPer1k float64 // MiB per 1,000 open streams
	Err                           string
}

func (h *harness) streams() []streamRow {
	var out []streamRow
	for _, n := range pick(h, []int{100, 200, 500, 1000, 2000}, []int{50}) {
		dur, ramp := pick(h, "8s", "2s"), pick(h, "2s", "500ms")
		r, err := h.run(nil, filepath.Join(h.tools, "loadgen"), "-mode", "stream", "-c", strconv.Itoa(n), "-tokens", "250",
			"-itl", "20ms", "-duration", dur, "-ramp", ramp, "-settle", "1s", "-json")
		row := streamRow{Streams: n}
		var j struct {
			ChunksPerS float64 `json:"chunks_per_s"`
			Ideal      float64 `json:"ideal_chunks_per_s"`
			P50        float64 `json:"stamp_err_p50_ms"`
			P99        float64 `json:"stamp_err_p99_ms"`
			Errors     float64 `json:"errors"`
			Heap       float64 `json:"client_heap_stack_mib_per_1k"`
			RSS        float64 `json:"client_rss_mib_per_1k"`
			Sim        float64 `json:"sim_rss_mib_per_1k"`
		}
		if err == nil {
			err = lastJSON(r.out, &j)
		}
		if err != nil {
			row.Err = err.Error()
		}
		row.ChunksPerS, row.IdealPerS, row.P50, row.P99, row.Errors = j.ChunksPerS, j.Ideal, j.P50, j.P99, j.Errors
		row.HeapPer1k, row.RSSPer1k, row.SimPer1k = j.Heap, j.RSS, j.Sim
		out = append(out, row)
	}
	return out
}
