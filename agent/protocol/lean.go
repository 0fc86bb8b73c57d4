package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// leanClient is a minimal HTTP/1.1 keep-alive client over net.Conn for
// plain http:// targets, streamed (SSE) or not: one goroutine (the
// caller's) per request, one write syscall per request, no per-connection
// reader/writer goroutines and no per-connection write buffer, so an open
// stream costs a socket, a 4 KiB read buffer and the caller's stack. It
// handles Content-Length, chunked and read-to-close bodies; anything else
// (TLS, a custom http.Client, a connection cap) uses net/http.
type leanClient struct {
	host string // Host header
	addr string // dial address
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	mu   sync.Mutex
	idle []*leanConn
}

// leanConn is one connection and the state of the response being read.
type leanConn struct {
	c    net.Conn
	br   *bufio.Reader
	body leanBody
	stop func() bool // unregisters the request's context.AfterFunc
}

// leanReadBuffer is the read buffer of a connection: responses bigger
// than this are read past it, and SSE lines longer than it are joined by
// the SSE reader, so it only bounds memory.
const leanReadBuffer = 4 << 10

func newLeanClient(base string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*leanClient, bool) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &leanClient{host: u.Host, addr: addr, dial: dial}, true
}

func (l *leanClient) get(ctx context.Context) (*leanConn, bool, error) {
	l.mu.Lock()
	if n := len(l.idle); n > 0 {
		c := l.idle[n-1]
		l.idle[n-1] = nil
		l.idle = l.idle[:n-1]
		l.mu.Unlock()
		return c, true, nil
	}
	l.mu.Unlock()
	c, err := l.dial(ctx, "tcp", l.addr)
	if err != nil {
		return nil, false, err
	}
	lc := &leanConn{c: c, br: bufio.NewReaderSize(c, leanReadBuffer)}
	lc.body.br = lc.br
	return lc, false, nil
}

// release ends a request on c: the connection goes back to the idle pool
// when reuse is set, its body was read to the end and the request's
// context did not fire; otherwise it is closed.
func (l *leanClient) release(c *leanConn, reuse bool) {
	fired := c.stop != nil && !c.stop()
	c.stop = nil
	if !reuse || fired || !c.body.finished() {
		c.c.Close()
		return
	}
	l.mu.Lock()
	l.idle = append(l.idle, c)
	l.mu.Unlock()
}

// errNoResponse marks a reused connection that the server had closed
// before answering: the request is retried once on a fresh connection.
// It wraps io.EOF, so that it classifies as stream_broken like net/http's.
var errNoResponse = fmt.Errorf("connection closed before response: %w", io.EOF)

// leanHead is what the status line and headers say.
type leanHead struct {
	status int
	keep   bool // the connection may be reused after the body
	sse    bool // Content-Type: text/event-stream
}

var reqBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// open sends one request and reads the response head; rec gets SendNs and
// AckNs. The caller reads c.body and must call release(c, …).
func (l *leanClient) open(ctx context.Context, path string, hdr []string, body []byte, stream bool,
	rec *metrics.RequestRecord) (*leanConn, leanHead, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := l.get(ctx)
		if err != nil {
			rec.SendNs = metrics.Now()
			return nil, leanHead{}, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.c.SetDeadline(dl)
		} else {
			_ = c.c.SetDeadline(time.Time{})
		}
		conn := c.c
		c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		h, err := l.roundTrip(ctx, c, path, hdr, body, stream, rec)
		if err != nil {
			c.stop()
			c.stop = nil
			c.c.Close()
			if errors.Is(err, errNoResponse) && reused && attempt == 0 {
				continue
			}
			return nil, leanHead{}, err
		}
		return c, h, nil
	}
}

func (l *leanClient) roundTrip(ctx context.Context, c *leanConn, path string, hdr []string, body []byte, stream bool,
	rec *metrics.RequestRecord) (leanHead, error) {
	bp := reqBufPool.Get().(*[]byte)
	w := append((*bp)[:0], "POST "...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, l.host...)
	w = append(w, "\r\nContent-Type: application/json\r\n"...)
	if stream {
		w = append(w, "Accept: text/event-stream\r\n"...)
	}
	w = append(w, "Content-Length: "...)
	w = appendInt(w, len(body))
	w = append(w, "\r\n"...)
	for i := 0; i+1 < len(hdr); i += 2 {
		w = append(w, hdr[i]...)
		w = append(w, ": "...)
		w = append(w, hdr[i+1]...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	var err error
	rec.SendNs = metrics.Now()
	if len(body) <= 16<<10 {
		w = append(w, body...)
		_, err = c.c.Write(w)
	} else {
		bufs := net.Buffers{w, body} // one writev
		_, err = bufs.WriteTo(c.c)
	}
	if cap(w) <= 64<<10 {
		*bp = w[:0]
		reqBufPool.Put(bp)
	}
	if err != nil {
		return leanHead{}, ctxErr(ctx, err)
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
			return leanHead{}, errNoResponse
		}
		return leanHead{}, ctxErr(ctx, err)
	}
	rec.AckNs = metrics.Now()
	var h leanHead
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return h, fmt.Errorf("bad status line %q", line)
	}
	st, ok := parseUint(line[9:12], 10)
	if !ok {
		return h, fmt.Errorf("bad status line %q", line)
	}
	h.status, h.keep = int(st), line[7] == '1'
	cl, chunked := int64(-1), false
	for {
		hl, err := c.br.ReadSlice('\n')
		if err != nil {
			return h, ctxErr(ctx, err)
		}
		hl = bytes.TrimRight(hl, "\r\n")
		if len(hl) == 0 {
			break
		}
		k, v, ok := bytes.Cut(hl, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, ok := parseUint(v, 10)
			if !ok {
				return h, fmt.Errorf("bad Content-Length %q", v)
			}
			cl = int64(n)
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				h.keep = false
			} else if bytes.EqualFold(v, []byte("keep-alive")) {
				h.keep = true
			}
		case bytes.EqualFold(k, []byte("Content-Type")):
			mt, _, _ := bytes.Cut(v, []byte(";"))
			h.sse = bytes.EqualFold(bytes.TrimSpace(mt), []byte("text/event-stream"))
		}
	}
	b := &c.body
	b.left, b.crlf, b.done = 0, false, false
	switch {
	case h.status == 204 || h.status == 304 || (h.status >= 100 && h.status < 200):
		b.mode = bodyNone
	case chunked:
		b.mode = bodyChunked
	case cl >= 0:
		b.mode, b.left = bodyLength, cl
	default:
		b.mode, h.keep = bodyEOF, false
	}
	return h, nil
}

// readAll reads the whole body of c.
func (c *leanConn) readAll() ([]byte, error) {
	b := &c.body
	if b.mode == bodyLength {
		out := make([]byte, b.left)
		_, err := io.ReadFull(b, out)
		return out, err
	}
	return io.ReadAll(b)
}

// drain reads what is left of the body, at most 64 KiB, and reports
// whether it reached its end (the connection can then be reused).
func (c *leanConn) drain() bool {
	if !c.body.finished() {
		_, _ = io.CopyN(io.Discard, &c.body, 64<<10)
	}
	return c.body.finished()
}

type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyEOF
)

// leanBody reads a response body from the connection's buffer, decoding
// chunked transfer encoding. A Read returns what one read of the socket
// gave (it never waits for more than it must), so a streamed event is
// seen as soon as it arrives.
type leanBody struct {
	br   *bufio.Reader
	mode bodyMode
	left int64 // bytes left: of the body (bodyLength) or of the current chunk (bodyChunked)
	crlf bool  // chunked: the current chunk's data is read, its CRLF is not
	done bool  // the body was read to its end
}

// errBadChunk reports malformed chunked encoding.
var errBadChunk = errors.New("malformed chunked encoding")

// finished reports whether the body was read to its end.
func (b *leanBody) finished() bool {
	return b.done || b.mode == bodyNone || (b.mode == bodyLength && b.left == 0)
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done || len(p) == 0 {
		if b.done {
			return 0, io.EOF
		}
		return 0, nil
	}
	switch b.mode {
	case bodyNone:
		b.done = true
		return 0, io.EOF
	case bodyEOF:
		n, err := b.br.Read(p)
		if err == io.EOF {
			if n > 0 {
				return n, nil
			}
			b.done = true
		}
		return n, err
	case bodyLength:
		if b.left == 0 {
			b.done = true
			return 0, io.EOF
		}
	case bodyChunked:
		for b.left == 0 {
			if err := b.nextChunk(); err != nil {
				return 0, err
			}
			if b.done {
				return 0, io.EOF
			}
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.mode == bodyChunked && b.left == 0 {
		b.crlf = true
	}
	if err == io.EOF {
		if n > 0 {
			err = nil // the next Read sees it again
		} else {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// nextChunk reads the CRLF ending the previous chunk and the next chunk's
// size line; at the last chunk it reads the trailers and sets done.
func (b *leanBody) nextChunk() error {
	if b.crlf {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return unexpected(err)
		}
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			return errBadChunk
		}
		b.crlf = false
	}
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		return unexpected(err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extensions
		line = line[:i]
	}
	n, ok := parseUint(bytes.TrimSpace(line), 16)
	if !ok || n > 1<<40 {
		return errBadChunk
	}
	if n > 0 {
		b.left = int64(n)
		return nil
	}
	for { // trailers up to the blank line
		t, err := b.br.ReadSlice('\n')
		if err != nil {
			return unexpected(err)
		}
		if len(bytes.TrimRight(t, "\r\n")) == 0 {
			break
		}
	}
	b.done = true
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err == bufio.ErrBufferFull {
		return errBadChunk
	}
	return err
}

// parseUint parses a non-empty unsigned number in base 10 or 16 with no
// sign or prefix.
func parseUint(s []byte, base uint64) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}

func appendInt(b []byte, n int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
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
