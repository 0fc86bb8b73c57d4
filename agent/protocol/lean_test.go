package protocol

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/perfleet/perfleet/pkg/metrics"
)

func TestLeanClientBodies(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("X-A") != "b" {
			t.Errorf("headers %v", r.Header)
		}
		switch n % 3 {
		case 0: // chunked
			w.(http.Flusher).Flush()
			io.WriteString(w, `{"choices":[{"text":"chunked"}]}`)
		case 1: // content-length, then close the connection
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"choices":[{"text":"closed"}]}`)
		default:
			io.WriteString(w, `{"choices":[{"text":"plain"}]}`)
		}
	}))
	defer srv.Close()
	c, _ := NewOpenAI(Config{BaseURL: srv.URL, APIKey: "k", Headers: map[string]string{"X-A": "b"}, KeepText: true}, false)
	if c.eng.lean == nil {
		t.Fatal("lean client not used for http://")
	}
	for i := 0; i < 9; i++ {
		rec, out := &metrics.RequestRecord{}, &Output{}
		c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, out)
		if rec.Error != "" || rec.HTTPStatus != 200 || len(out.Text) == 0 || rec.AckNs < rec.SendNs || rec.EndNs < rec.AckNs {
			t.Fatalf("request %d: %+v %q", i, rec, out.Text)
		}
	}
	srv.CloseClientConnections() // idle keep-alive connections die: the next request must retry
	rec := &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m", Prompt: "p"}, rec, &Output{})
	if rec.Error != "" {
		t.Fatalf("after idle close: %s %s", rec.Error, rec.ErrorMsg)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ = NewOpenAI(Config{BaseURL: "http://" + addr}, false)
	rec = &metrics.RequestRecord{}
	c.Do(context.Background(), &Request{Model: "m"}, rec, &Output{})
	if rec.Error != CodeConnect {
		t.Fatalf("refused: %q %s", rec.Error, rec.ErrorMsg)
	}
}
