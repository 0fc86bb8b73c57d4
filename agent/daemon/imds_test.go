package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeIMDS behaves like IMDSv2: a PUT for a session token, then GETs that
// must carry it.
func fakeIMDS(t *testing.T) *httptest.Server {
	const token = "tok-123"
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
				http.Error(w, "missing ttl", http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			w.Write([]byte(token))
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/latest/dynamic/instance-identity/document":
			w.Write([]byte(`{"instanceType":"p5.48xlarge","region":"us-west-2","instanceId":"i-0123456789abcdef0","accountId":"123456789012"}`))
		default:
			http.NotFound(w, r)
		}
	}))
}

func TestFromIMDS(t *testing.T) {
	srv := fakeIMDS(t)
	defer srv.Close()
	it, region, err := FromIMDS(context.Background(), srv.URL, 2*time.Second)
	if err != nil || it != "p5.48xlarge" || region != "us-west-2" {
		t.Fatalf("got %q %q %v", it, region, err)
	}
}

func TestFromIMDSUnreachableFailsFast(t *testing.T) {
	srv := fakeIMDS(t)
	srv.Close() // nothing listens there now
	start := time.Now()
	if _, _, err := FromIMDS(context.Background(), srv.URL, 500*time.Millisecond); err == nil {
		t.Fatal("want an error")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}
