package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// leanClient is a minimal HTTP/1.1 keep-alive client over net.Conn for the
// hot path of short, non-streamed requests to plain http:// targets: one
// goroutine (the caller's) per request, one write syscall per request, no
// per-connection reader/writer goroutines. It handles Content-Length,
// chunked and read-to-close bodies; anything else (TLS, streaming) uses
// net/http.
type leanClient struct {
	host   string // Host header
	addr   string // dial address
	dialer net.Dialer
	mu     sync.Mutex
	idle   []*leanConn
}

type leanConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newLeanClient(base string) (*leanClient, bool) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &leanClient{host: u.Host, addr: addr, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}, true
}

func (l *leanClient) get(ctx context.Context) (*leanConn, bool, error) {
	l.mu.Lock()
	if n := len(l.idle); n > 0 {
		c := l.idle[n-1]
		l.idle = l.idle[:n-1]
		l.mu.Unlock()
		return c, true, nil
	}
	l.mu.Unlock()
	c, err := l.dialer.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, false, err
	}
	return &leanConn{c: c, br: bufio.NewReaderSize(c, 8<<10), bw: bufio.NewWriterSize(c, 8<<10)}, false, nil
}

func (l *leanClient) put(c *leanConn) {
	l.mu.Lock()
	l.idle = append(l.idle, c)
	l.mu.Unlock()
}

// errNoResponse marks a reused connection that the server had closed
// before answering: the request is retried once on a fresh connection.
var errNoResponse = errors.New("connection closed before response")

// post sends one request; rec gets SendNs and AckNs. It returns the
// status and the body.
func (l *leanClient) post(ctx context.Context, path string, hdr []string, body []byte, rec *metrics.RequestRecord) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := l.get(ctx)
		if err != nil {
			rec.SendNs = metrics.Now()
			return 0, nil, err
		}
		status, b, keep, err := l.roundTrip(ctx, c, path, hdr, body, rec)
		if err != nil {
			c.c.Close()
			if errors.Is(err, errNoResponse) && reused && attempt == 0 {
				continue
			}
			return 0, nil, err
		}
		if keep {
			l.put(c)
		} else {
			c.c.Close()
		}
		return status, b, nil
	}
}

func (l *leanClient) roundTrip(ctx context.Context, c *leanConn, path string, hdr []string, body []byte, rec *metrics.RequestRecord) (status int, respBody []byte, keep bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.c.SetDeadline(dl)
	} else {
		_ = c.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	w := c.bw
	w.WriteString("POST ")
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(l.host)
	w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		w.WriteString(hdr[i])
		w.WriteString(": ")
		w.WriteString(hdr[i+1])
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	rec.SendNs = metrics.Now()
	if err := w.Flush(); err != nil {
		return 0, nil, false, ctxErr(ctx, err)
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
			return 0, nil, false, errNoResponse
		}
		return 0, nil, false, ctxErr(ctx, err)
	}
	rec.AckNs = metrics.Now()
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	keep = line[7] == '1'
	cl, chunked := int64(-1), false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, ctxErr(ctx, err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			cl, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil || cl < 0 {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(v, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
		return status, nil, keep, nil
	case chunked:
		respBody, err = io.ReadAll(httputil.NewChunkedReader(c.br))
		if err != nil {
			return 0, nil, false, ctxErr(ctx, midStream{err})
		}
		for { // trailers up to the blank line
			t, err := c.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, ctxErr(ctx, midStream{err})
			}
			if len(bytes.TrimRight(t, "\r\n")) == 0 {
				break
			}
		}
	case cl >= 0:
		respBody = make([]byte, cl)
		if _, err := io.ReadFull(c.br, respBody); err != nil {
			return 0, nil, false, ctxErr(ctx, midStream{err})
		}
	default:
		respBody, err = io.ReadAll(c.br)
		if err != nil {
			return 0, nil, false, ctxErr(ctx, midStream{err})
		}
		keep = false
	}
	return status, respBody, keep, nil
}

// midStream wraps body read errors so that they classify as stream_broken.
type midStream struct{ err error }

func (m midStream) Error() string { return "reading body: " + m.err.Error() }
func (m midStream) Unwrap() error { return m.err }

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}
