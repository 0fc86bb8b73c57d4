package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"sort"
	"sync"
	"time"
)

// runSSERaw is the reference reader for the streaming-fidelity check: the
// least a client can do to time an SSE response. Each request is a fresh
// TCP connection (dialled before the clock starts) carrying a hand-written
// HTTP/1.1 POST; every read is timestamped as it returns, and a content
// event is dated by the read that completed it. No HTTP library, no JSON,
// no SSE parser: what it measures is when the server's bytes arrived,
// which is the truth perfleet's own TTFT, ITL and E2E are compared with.
//
// With rate > 0 it starts one request every 1/rate seconds (open loop, as
// perfleet's -mode sse -rate and vegeta -rate do), so that the server sees
// the same pattern from each; otherwise conc requests run back to back.
func runSSERaw(target, path string, conc, tokens int, rate float64, dur time.Duration, asJSON bool) {
	u, err := url.Parse(target)
	must(err)
	body := fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":%d,"stream":true}`, tokens)
	req := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		path, u.Host, len(body), body))
	content, done := []byte(`"content":`), []byte("[DONE]")
	var (
		mu             sync.Mutex
		ttft, itl, e2e []float64
		errs           int
	)
	deadline := time.Now().Add(dur)
	buffers := sync.Pool{New: func() any { return make([]byte, 64<<10) }}
	one := func() {
		buf := buffers.Get().([]byte)
		defer buffers.Put(buf)
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			mu.Lock()
			errs++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return
		}
		var seen []byte // all bytes so far, to find markers split over reads
		var chunks []time.Time
		start := time.Now()
		_, err = c.Write(req)
		var end time.Time
		for err == nil {
			var n int
			n, err = c.Read(buf)
			at := time.Now()
			from := max(0, len(seen)-len(content))
			seen = append(seen, buf[:n]...)
			chunks = append(chunks, repeat(at, bytes.Count(seen[from:], content))...)
			if bytes.Contains(seen[max(0, from-len(done)):], done) {
				end = at
				break
			}
		}
		c.Close()
		mu.Lock()
		defer mu.Unlock()
		if end.IsZero() || len(chunks) < 2 {
			errs++
			return
		}
		ttft = append(ttft, ms(chunks[0].Sub(start)))
		itl = append(itl, ms(chunks[len(chunks)-1].Sub(chunks[0]))/float64(len(chunks)-1))
		e2e = append(e2e, ms(end.Sub(start)))
	}
	var wg sync.WaitGroup
	if rate > 0 {
		every := time.Duration(float64(time.Second) / rate)
		for next := time.Now(); next.Before(deadline); next = next.Add(every) {
			time.Sleep(time.Until(next))
			wg.Add(1)
			go func() { defer wg.Done(); one() }()
		}
	}
	for w := 0; rate <= 0 && w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				one()
			}
		}()
	}
	wg.Wait()
	p50 := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Printf("raw reader: %d requests, %d errors: TTFT p50 %.3f ms, ITL p50 %.3f ms, E2E p50 %.3f ms\n",
		len(e2e), errs, p50(ttft), p50(itl), p50(e2e))
	if asJSON {
		printJSON(map[string]any{"mode": "sse-raw", "ok": len(e2e), "errors": errs, "time_to_first_token_p50_ms": p50(ttft),
			"inter_token_latency_p50_ms": p50(itl), "p50_ms": p50(e2e)})
	}
}

func repeat(t time.Time, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = t
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
