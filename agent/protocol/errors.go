// Package protocol turns inference requests into wire traffic and the wire
// back into timing records: OpenAI chat/completions (SSE and plain JSON),
// KServe v2 and generic HTTP with a JMESPath response field.
package protocol

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
)

// Stable error codes, usable as metric labels (k6 httpext style). They are
// part of perfleet's result format: never rename one.
const (
	CodeConnect      = "connect"       // dial failed: refused, unreachable, DNS
	CodeTLS          = "tls"           // handshake or certificate failure
	CodeTimeout      = "timeout"       // request_timeout_seconds or an I/O timeout
	CodeHTTP4xx      = "http_4xx"      // status 400–499 (HTTPStatus has the code)
	CodeHTTP5xx      = "http_5xx"      // status 500–599
	CodeHTTPOther    = "http_other"    // any other non-2xx status
	CodeStreamBroken = "stream_broken" // connection lost or stream ended before completion
	CodeParse        = "parse"         // response body or event not understood
	CodeCancelled    = "cancelled"     // run ended (grace period) or caller cancelled
	CodeServer       = "server_error"  // 2xx response carrying an error object
	CodeOther        = "other"
)

// StatusCode returns the error code of an HTTP status ("" for 2xx).
func StatusCode(status int) string {
	switch {
	case status >= 200 && status < 300:
		return ""
	case status >= 400 && status < 500:
		return CodeHTTP4xx
	case status >= 500 && status < 600:
		return CodeHTTP5xx
	}
	return CodeHTTPOther
}

// StatusLabel returns "http_503"-style labels for a status.
func StatusLabel(status int) string { return "http_" + strconv.Itoa(status) }

// Classify maps a transport error to a stable code. ctx is the request's
// context; midStream says the error happened while reading the body.
func Classify(ctx context.Context, err error, midStream bool) string {
	if err == nil {
		return ""
	}
	switch ctx.Err() {
	case context.Canceled:
		return CodeCancelled
	case context.DeadlineExceeded:
		return CodeTimeout
	}
	if errors.Is(err, context.Canceled) {
		return CodeCancelled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) {
		return CodeTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CodeTimeout
	}
	var (
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
	)
	if errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &cve) || errors.As(err, &ua) ||
		errors.As(err, &hn) || errors.As(err, &ci) {
		return CodeTLS
	}
	if midStream {
		return CodeStreamBroken
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return CodeConnect
	}
	var dns *net.DNSError
	if errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) {
		return CodeConnect
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return CodeStreamBroken
	}
	return CodeOther
}

var errTimeout = errors.New("request timeout")
