package llmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gapHist is a lock-free histogram of durations with 100 µs buckets up to
// 10 s, shared by all client goroutines.
type gapHist struct {
	counts [100001]atomic.Uint64
}

const gapBucket = 100 * time.Microsecond

// add records one duration.
func (h *gapHist) add(d time.Duration) {
	i := min(int(d/gapBucket), len(h.counts)-1)
	h.counts[max(i, 0)].Add(1)
}

// quantiles returns the total count and the given quantiles in ms (upper
// bucket edges).
func (h *gapHist) quantiles(qs ...float64) (uint64, []float64) {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	out := make([]float64, len(qs))
	for qi, q := range qs {
		rank, cum := uint64(q*float64(total)), uint64(0)
		for i := range h.counts {
			cum += h.counts[i].Load()
			if cum > rank {
				out[qi] = float64(time.Duration(i+1)*gapBucket) / 1e6
				break
			}
		}
	}
	return total, out
}

// clientResult is what the client process reports to the parent.
type clientResult struct {
	Streams, Connected, Broken       int
	Frames                           uint64
	GapP50, GapP90, GapP99, GapP999  float64 // ms, every SSE frame gap
	MeanP50, MeanP99                 float64 // ms, per-stream mean gap
	TokensPerSec, TargetTokensPerSec float64
	CPUCores                         float64
}

// raiseNoFile lifts the soft open-file limit to the hard one and returns it.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 1024
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Max
}

// cpuSeconds returns this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// TestCapacityClient is the raw streaming client of TestCapacity, run by it
// in a separate process (so each side has its own descriptor limit and its
// own memory figures). It opens LLMSIM_CLIENT_STREAMS connections over a
// ramp, keeps one long streaming request on each, measures SSE frame gaps in
// a window and prints one LLMSIM_RESULT line.
func TestCapacityClient(t *testing.T) {
	addr := os.Getenv("LLMSIM_CAPACITY_CLIENT")
	if addr == "" {
		t.Skip("run by TestCapacity")
	}
	envDur := func(k string) time.Duration { d, _ := time.ParseDuration(os.Getenv(k)); return d }
	n, _ := strconv.Atoi(os.Getenv("LLMSIM_CLIENT_STREAMS"))
	ramp, settle, window, itl := envDur("LLMSIM_CLIENT_RAMP"), envDur("LLMSIM_CLIENT_SETTLE"), envDur("LLMSIM_CLIENT_WINDOW"), envDur("LLMSIM_CLIENT_ITL")
	raiseNoFile()
	maxTokens := int((ramp+settle+window)/itl) + 500
	body := fmt.Sprintf(`{"model":"llmsim","prompt":"capacity","max_tokens":%d,"ignore_eos":true,"stream":true}`, maxTokens)
	request := []byte(fmt.Sprintf("POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body))

	startNs, _ := strconv.ParseInt(os.Getenv("LLMSIM_CLIENT_START"), 10, 64)
	t0 := time.Unix(0, startNs)
	wStart, wEnd := t0.Add(ramp+settle), t0.Add(ramp+settle+window)
	var gaps, means gapHist
	var connected, broken atomic.Int64
	var frames atomic.Uint64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(t0.Add(ramp * time.Duration(i) / time.Duration(n))))
			d := net.Dialer{Timeout: 30 * time.Second}
			if n > 28000 { // one source address per 20,000 connections
				d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i/20000))}
			}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				broken.Add(1)
				return
			}
			defer c.Close()
			connected.Add(1)
			if _, err := c.Write(request); err != nil {
				broken.Add(1)
				return
			}
			_ = c.SetReadDeadline(wEnd)
			buf := make([]byte, 1024)
			var last, first time.Time
			var inWindow, prevNL = 0, false
			for {
				m, err := c.Read(buf)
				now := time.Now()
				if m > 0 {
					k := bytes.Count(buf[:m], []byte("\n\n"))
					joined := prevNL && buf[0] == '\n' // "\n\n" split across reads
					if joined {
						k++
					}
					prevNL = buf[m-1] == '\n' && !(m >= 2 && buf[m-2] == '\n') && !(m == 1 && joined)
					if k > 0 && now.After(wStart) {
						if !last.IsZero() {
							gaps.add(now.Sub(last))
							for range k - 1 {
								gaps.add(0)
							}
						}
						if first.IsZero() {
							first = now
						}
						inWindow += k
						frames.Add(uint64(k))
					}
					if k > 0 {
						last = now
					}
				}
				if err != nil {
					if !now.After(wEnd.Add(-10 * time.Millisecond)) {
						broken.Add(1)
					}
					break
				}
			}
			if inWindow > 1 {
				means.add(last.Sub(first) / time.Duration(inWindow-1))
			}
		}()
	}
	time.Sleep(time.Until(wStart))
	cpu0 := cpuSeconds()
	time.Sleep(time.Until(wEnd))
	cpu1 := cpuSeconds()
	wg.Wait()
	r := clientResult{Streams: n, Connected: int(connected.Load()), Broken: int(broken.Load()), Frames: frames.Load(),
		TargetTokensPerSec: float64(n) / itl.Seconds(), CPUCores: (cpu1 - cpu0) / window.Seconds()}
	r.TokensPerSec = float64(r.Frames) / window.Seconds()
	_, q := gaps.quantiles(0.5, 0.9, 0.99, 0.999)
	r.GapP50, r.GapP90, r.GapP99, r.GapP999 = q[0], q[1], q[2], q[3]
	_, q = means.quantiles(0.5, 0.99)
	r.MeanP50, r.MeanP99 = q[0], q[1]
	b, _ := json.Marshal(r)
	fmt.Printf("LLMSIM_RESULT %s\n", b)
}
