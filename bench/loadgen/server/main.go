// Command server is the target of perfleet's load-generator benchmarks: a
// plain HTTP endpoint with a fixed delay (GET/POST /, for vegeta, wrk and
// perfleet) and a minimal OpenAI chat endpoint that streams tokens at a
// fixed TTFT and inter-token latency, each chunk stamped with its send time
// ("stamp_ns", Unix ns) so client timestamps can be checked against it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	delay := flag.Duration("delay", 0, "delay of the plain endpoint")
	ttft := flag.Duration("ttft", 50*time.Millisecond, "time to first token")
	itl := flag.Duration("itl", 20*time.Millisecond, "inter-token latency")
	flag.Parse()
	body := []byte(`{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if *delay > 0 {
			time.Sleep(*delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			MaxTokens int  `json:"max_tokens"`
			Stream    bool `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		n := req.MaxTokens
		if n <= 0 {
			n = 16
		}
		if !req.Stream {
			time.Sleep(*ttft + time.Duration(n-1)**itl)
			fmt.Fprintf(w, `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":10,"completion_tokens":%d}}`, n)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		start := time.Now()
		for i := 0; i < n; i++ {
			due := start.Add(*ttft + time.Duration(i)**itl)
			time.Sleep(time.Until(due))
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\" tok\"}}],\"stamp_ns\":%d}\n\n", time.Now().UnixNano())
			fl.Flush()
		}
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n")
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", n)
	})
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
