package audit

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/perfleet/perfleet/pkg/resultstore"
)

// Content types S3Uploader records for audit files.
const (
	// ContentTypeJSONL is the content type of an uncompressed audit file.
	ContentTypeJSONL = "application/x-ndjson"
	// ContentTypeGzip is the content type of a gzip-compressed audit file.
	ContentTypeGzip = "application/gzip"
)

// S3Uploader is an Uploader that stores audit files through a
// resultstore.Store: in S3 (s3://bucket/prefix, with SSE-S3 or SSE-KMS as
// the store's options say) or in a local directory (file:///path). Each
// file becomes the object <prefix>/<name>; an upload is all-or-nothing, and
// a retried upload replaces the object. S3Uploader is safe for concurrent
// use.
type S3Uploader struct {
	store resultstore.Store
}

// NewS3Uploader opens location (s3://bucket/prefix or file:///path) with
// resultstore.Open. No network traffic is sent until the first upload.
func NewS3Uploader(ctx context.Context, location string, opts resultstore.Options) (*S3Uploader, error) {
	st, err := resultstore.Open(ctx, location, opts)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &S3Uploader{store: st}, nil
}

// NewS3UploaderFromStore returns an S3Uploader writing to an open store.
func NewS3UploaderFromStore(st resultstore.Store) *S3Uploader {
	return &S3Uploader{store: st}
}

// Store returns the store the uploader writes to.
func (u *S3Uploader) Store() resultstore.Store { return u.store }

// Upload stores size bytes from r under the key name, with content type
// ContentTypeGzip for names ending in .gz and ContentTypeJSONL otherwise.
// name must be a valid resultstore key (see resultstore.ValidateKey).
func (u *S3Uploader) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := resultstore.ValidateKey(name); err != nil {
		return fmt.Errorf("audit: upload: %w", err)
	}
	ct := ContentTypeJSONL
	if strings.HasSuffix(name, ".gz") {
		ct = ContentTypeGzip
	}
	if err := u.store.Put(ctx, name, r, size, ct); err != nil {
		return fmt.Errorf("audit: upload %s: %w", u.store.URI(name), err)
	}
	return nil
}
