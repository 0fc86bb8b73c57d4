// Package resultstore writes benchmark results to an output location, the
// equivalent of SageMaker's OutputConfig.S3OutputLocation. Two kinds of
// location are accepted:
//
//	s3://bucket/prefix         Amazon S3 or an S3-compatible store (MinIO, …)
//	file:///absolute/path      a local directory (the default with no cloud account)
//
// A Store addresses objects by keys relative to the location, such as
// "job-1/concurrency_8/profile_export_aiperf.json". Keys are slash-separated
// relative paths; see ValidateKey for the rules.
//
// Writes are all-or-nothing in both stores: a file:// object is written to a
// temporary file in the same directory, synced and renamed into place; an
// s3:// object becomes visible only when its (multipart) upload completes. A
// reader never sees a partially written object under its final key.
package resultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Sentinel errors. Errors returned by this package wrap one of these where
// they apply; test them with errors.Is.
var (
	// ErrInvalidLocation reports an output location that cannot be parsed.
	ErrInvalidLocation = errors.New("invalid output location")
	// ErrInvalidKey reports a key or prefix that breaks the key rules.
	ErrInvalidKey = errors.New("invalid key")
	// ErrNotFound reports a Get of a key that holds no object.
	ErrNotFound = errors.New("object not found")
	// ErrBucketNotFound reports an S3 bucket that does not exist.
	ErrBucketNotFound = errors.New("bucket not found")
	// ErrSizeMismatch reports a Put whose reader did not yield the declared size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrClosed reports a write to an ObjectWriter that was already closed.
	ErrClosed = errors.New("writer already closed")
)

// Object describes one stored object.
type Object struct {
	// Key is the object's key relative to the store's location.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is the last modification time reported by the store.
	ModTime time.Time
	// SHA256 is the lowercase hex SHA-256 of the content when the caller
	// knows it; List leaves it empty. WriteManifest fills in a missing one
	// by reading the object.
	SHA256 string
}

// Store reads and writes result objects under one output location. Stores
// are safe for concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object
	// there. A size of -1 means unknown; otherwise a reader that yields more
	// or fewer bytes fails with ErrSizeMismatch and nothing is stored.
	// contentType is recorded by s3:// and ignored by file://.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Writer streams an object of unknown length (large JSONL exports). The
	// object appears under key only when Close returns nil; CloseWithError,
	// a failed Write or a cancelled ctx leave nothing under key (file://
	// may leave behind empty directories it created; List ignores them).
	// The caller must call Close or CloseWithError.
	Writer(ctx context.Context, key string) (ObjectWriter, error)
	// Get opens the object under key. A missing object yields ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the objects at or below prefix, sorted by key. The empty
	// prefix lists everything; prefix "job-1" matches "job-1" and
	// "job-1/…" but not "job-10/…".
	List(ctx context.Context, prefix string) ([]Object, error)
	// DeletePrefix removes the objects List(prefix) would return and reports
	// how many were removed.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// URI returns the absolute URI of key (s3://… or file://…); URI("")
	// returns the location itself.
	URI(key string) string
}

// ObjectWriter is a streaming write into a Store. Close commits the object;
// CloseWithError discards it.
type ObjectWriter interface {
	io.WriteCloser
	// CloseWithError aborts the write: nothing is stored under the key and
	// later writes fail. err (nil allowed) is reported to any reader side of
	// the stream. It returns an error only if cleaning up failed.
	CloseWithError(err error) error
}

// Options configure Open. Fields that only apply to s3:// are ignored for
// file:// locations.
type Options struct {
	// Region is the S3 bucket's AWS region. Empty means the SDK's default
	// (AWS_REGION, shared config); with an Endpoint set it falls back to
	// us-east-1.
	Region string
	// Endpoint overrides the S3 base endpoint (e.g. "http://127.0.0.1:9000"
	// for MinIO). Setting it also switches to path-style addressing.
	Endpoint string
	// Credentials replaces the SDK's default credential chain.
	Credentials aws.CredentialsProvider
	// PartSize is the multipart upload part size in bytes; 0 means
	// DefaultPartSize. S3 requires at least MinPartSize. Objects larger
	// than one part go up as a multipart upload; each upload in flight
	// buffers up to Concurrency+1 parts in memory.
	PartSize int64
	// Concurrency is the number of parts uploaded in parallel per object;
	// 0 means DefaultConcurrency.
	Concurrency int
	// KMSKeyID selects SSE-KMS (aws:kms) with this key ID or ARN. Empty
	// means SSE-S3 (AES256). Every upload sets one of the two.
	KMSKeyID string
}

// Upload tuning defaults and limits.
const (
	// MinPartSize is the smallest part size S3 accepts.
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size used when Options.PartSize is 0.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is the parallel part count when Options.Concurrency is 0.
	DefaultConcurrency = 4
)

const locationForms = "must be s3://bucket/prefix or file:///absolute/path"

// LocationError describes why an output location was rejected. It wraps
// ErrInvalidLocation.
type LocationError struct {
	Location string // the location as given
	Reason   string // what is wrong with it
}

// Error returns `output location "<location>": <reason>`.
func (e *LocationError) Error() string {
	return fmt.Sprintf("output location %q: %s", e.Location, e.Reason)
}

// Unwrap returns ErrInvalidLocation.
func (e *LocationError) Unwrap() error { return ErrInvalidLocation }

// Open parses location and returns the Store for it. It sends no network
// traffic: an s3:// store's credentials and bucket are first used by the
// first operation.
func Open(ctx context.Context, location string, opts Options) (Store, error) {
	bad := func(reason string) error { return &LocationError{Location: location, Reason: reason} }
	u, err := url.Parse(location)
	if err != nil || location == "" {
		return nil, bad(locationForms)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, bad("query, fragment and user info are not allowed; " + locationForms)
	}
	switch u.Scheme {
	case "file":
		root, err := fileRoot(u)
		if err != nil {
			return nil, bad(err.Error())
		}
		st, err := newFileStore(root)
		if err != nil {
			return nil, bad(err.Error())
		}
		return st, nil
	case "s3":
		bucket, prefix, err := s3BucketPrefix(u)
		if err != nil {
			return nil, bad(err.Error())
		}
		return newS3Store(ctx, bucket, prefix, opts)
	default:
		return nil, bad(locationForms)
	}
}

func fileRoot(u *url.URL) (string, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return "", fmt.Errorf("file location needs an absolute path with three slashes (file:///absolute/path)")
	}
	if !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("file location path must be absolute (file:///absolute/path)")
	}
	if strings.ContainsRune(u.Path, 0) {
		return "", fmt.Errorf("file location path contains NUL")
	}
	return filepath.Clean(filepath.FromSlash(u.Path)), nil
}

func s3BucketPrefix(u *url.URL) (bucket, prefix string, err error) {
	bucket = u.Host
	if bucket == "" {
		return "", "", fmt.Errorf("missing bucket; " + locationForms)
	}
	if err := validBucket(bucket); err != nil {
		return "", "", err
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return "", "", fmt.Errorf("prefix: %v", err)
		}
	}
	return bucket, prefix, nil
}

func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q may hold only lowercase letters, digits, '.' and '-'", b)
		}
	}
	return nil
}

// KeyError describes why a key was rejected. It wraps ErrInvalidKey.
type KeyError struct {
	Key    string // the key as given
	Reason string // which rule it breaks
}

// Error returns `key "<key>": <reason>`.
func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %s", e.Key, e.Reason) }

// Unwrap returns ErrInvalidKey.
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// tempPrefix starts the names of in-progress file:// writes; keys may not use it.
const tempPrefix = ".perfleet-tmp-"

// maxKeyLen is S3's limit on a key's length in bytes.
const maxKeyLen = 1024

// ValidateKey checks a key: a non-empty, slash-separated relative path of
// valid UTF-8 and at most 1024 bytes (S3's limit) with no NUL byte or other
// control character, no backslash, no leading slash, no empty, "." or ".."
// segment, and no segment starting with the reserved ".perfleet-tmp-".
func ValidateKey(key string) error {
	bad := func(reason string) error { return &KeyError{Key: key, Reason: reason} }
	switch {
	case key == "":
		return bad("empty key")
	case len(key) > maxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.ContainsRune(key, 0):
		return bad("contains a NUL byte")
	case strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("contains a control character")
	case strings.ContainsRune(key, '\\'):
		return bad("contains a backslash; use '/' as separator")
	case strings.HasPrefix(key, "/"):
		return bad("absolute path; keys are relative to the output location")
	}
	for _, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "..":
			return bad(`".." segment`)
		case seg == ".":
			return bad(`"." segment`)
		case strings.HasPrefix(seg, tempPrefix):
			return bad("segment uses the reserved prefix " + tempPrefix)
		}
	}
	return nil
}

// cleanPrefix validates a List/DeletePrefix prefix: empty, or a valid key
// with an optional trailing slash, which is dropped.
func cleanPrefix(prefix string) (string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" && prefix == "" {
		return "", nil
	}
	if err := ValidateKey(p); err != nil {
		return "", err
	}
	return p, nil
}

// underPrefix reports whether key is prefix itself or below it.
func underPrefix(key, prefix string) bool {
	return prefix == "" || key == prefix || strings.HasPrefix(key, prefix+"/")
}

// joinKey joins non-empty key parts with '/'.
func joinKey(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return path.Join(nonEmpty...)
}

// checkedReader enforces a declared size (unless it is negative) and stops
// reading once ctx is done.
type checkedReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // -1: unknown
	n    int64
}

func newCheckedReader(ctx context.Context, r io.Reader, size int64) *checkedReader {
	if size < 0 {
		size = -1
	}
	return &checkedReader{ctx: ctx, r: r, size: size}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.size >= 0 && c.n > c.size {
		return n, fmt.Errorf("%w: reader yielded more than the declared %d bytes", ErrSizeMismatch, c.size)
	}
	if err == io.EOF && c.size >= 0 && c.n != c.size {
		return n, fmt.Errorf("%w: reader yielded %d bytes, declared %d", ErrSizeMismatch, c.n, c.size)
	}
	return n, err
}
