package llmsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape fetches /metrics and returns the samples by series (name{labels}).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}) (\S+)$`)
	out := map[string]float64{}
	for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("malformed exposition line %q", l)
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("value in %q: %v", l, err)
		}
		out[m[1]] = v
	}
	return out
}

func TestMetricsContent(t *testing.T) {
	s, url := testServer(t, Config{Models: []string{"m", "alias"}, Profile: fastProfile(t)})
	for range 3 {
		post(t, url+"/v1/completions", `{"model":"alias","prompt":"one two three","max_tokens":4,"ignore_eos":true,"stream":true}`, nil)
	}
	post(t, url+"/v1/completions", `{"model":"nope","prompt":"x"}`, nil)
	m := scrape(t, url)
	l := `{model_name="m"}`
	want := map[string]float64{
		"vllm:num_requests_running" + l:                                       0,
		"vllm:num_requests_waiting" + l:                                       0,
		"vllm:gpu_cache_usage_perc" + l:                                       0,
		"vllm:prompt_tokens_total" + l:                                        9,
		"vllm:generation_tokens_total" + l:                                    12,
		`vllm:request_success_total{model_name="m",finished_reason="length"}`: 3,
		`vllm:time_to_first_token_seconds_count` + l:                          3,
		`vllm:time_to_first_token_seconds_bucket{model_name="m",le="+Inf"}`:   3,
		`vllm:inter_token_latency_seconds_count` + l:                          9,
		"llmsim_requests_received_total" + l:                                  4,
		"llmsim_requests_completed_total" + l:                                 3,
		"llmsim_requests_failed_total" + l:                                    1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	st := s.Stats()
	if st.PromptTokens != 9 || st.GenerationTokens != 12 || st.RequestsReceived != 4 {
		t.Errorf("Stats %+v disagrees with /metrics", st)
	}
}

func TestUnknownModelAndModelsList(t *testing.T) {
	_, url := testServer(t, Config{Models: []string{"a", "b"}, Profile: fastProfile(t)})
	status, raw, _ := post(t, url+"/v1/chat/completions", `{"model":"c","messages":[{"role":"user","content":"x"}],"stream":true}`, nil)
	if status != http.StatusNotFound || !strings.Contains(string(raw), `"error":{"message":"The model`) {
		t.Fatalf("unknown model: %d %s", status, raw)
	}
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"id":"a"`) || !strings.Contains(string(raw), `"id":"b"`) {
		t.Fatalf("models list %s", raw)
	}
	for _, body := range []string{`{"model":"a","prompt":"x","max_tokens":0}`, `{"model":"a","prompt":"x","max_tokens":40000}`, `{"model":"a","prompt":["x","y"]}`, `not json`} {
		if status, raw, _ := post(t, url+"/v1/completions", body, nil); status != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", body, status, raw)
		}
	}
}

func TestHealthLifecycle(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		rec := &statusRecorder{header: http.Header{}}
		req, _ := http.NewRequest(http.MethodGet, "/health", nil)
		s.Handler().ServeHTTP(rec, req)
		return rec.status
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil || s.Start(ctx) == nil {
		t.Fatalf("Start: %v, second Start must fail", err)
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("after Start: %d", code)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for get() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("still healthy after the Start context ended")
		}
		time.Sleep(time.Millisecond)
	}
	_ = s.Close()
}

// statusRecorder is a minimal ResponseWriter keeping the status code.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

func TestStatsUtilisationAndPower(t *testing.T) {
	p := fastProfile(t).WithFixedITL(20 * time.Millisecond)
	p.MaxNumSeqs = 4
	s, url := testServer(t, Config{Models: []string{"m"}, Profile: p})
	if s.GPUUtilisation() != 0 || s.PowerWatts() != p.IdleWatts {
		t.Fatalf("idle: util %v power %v", s.GPUUtilisation(), s.PowerWatts())
	}
	done := make(chan struct{})
	for range 6 {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := http.Post(url+"/v1/completions", "application/json",
				strings.NewReader(`{"model":"m","prompt":"x","max_tokens":100,"ignore_eos":true,"stream":true}`))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for st := s.Stats(); st.Running != 4 || st.Waiting != 2; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw 4 running and 2 waiting: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	if u, w := s.GPUUtilisation(), s.PowerWatts(); u != 1 || w != p.MaxWatts {
		t.Fatalf("full batch: util %v power %v, want 1 and %v", u, w, p.MaxWatts)
	}
	for range 6 {
		<-done
	}
	if st := s.Stats(); st.RequestsCompleted != 6 || st.Running != 0 || st.Load != 0 {
		t.Fatalf("after: %+v", st)
	}
}

func TestCloseAbortsStreams(t *testing.T) {
	p := fastProfile(t).WithFixedITL(20 * time.Millisecond)
	s, url := testServer(t, Config{Profile: p})
	type result struct {
		status    int
		truncated bool
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Post(url+"/v1/completions", "application/json",
			strings.NewReader(`{"model":"llmsim","prompt":"x","max_tokens":5000,"ignore_eos":true,"stream":true}`))
		if err != nil {
			got <- result{}
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, err != nil}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().Running != 1 {
		if time.Now().After(deadline) {
			t.Fatal("stream never started")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.status != http.StatusOK || !r.truncated {
			t.Fatalf("after Close: %+v, want a truncated 200 stream", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stream still open 20s after Close")
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after Close: %v", err)
	}
}
