package resultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// deleteBatch is the most keys one DeleteObjects call accepts.
const deleteBatch = 1000

// s3Store keeps objects in a bucket under an optional key prefix. Retries
// are the SDK's standard retryer's.
type s3Store struct {
	client   *s3.Client
	uploader *manager.Uploader
	bucket   string
	prefix   string // no leading or trailing slash; may be empty
	kmsKeyID string
}

var _ Store = (*s3Store)(nil)

func newS3Store(ctx context.Context, bucket, prefix string, opts Options) (*s3Store, error) {
	if opts.PartSize != 0 && opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("resultstore: part size %d is below the S3 minimum of %d bytes", opts.PartSize, MinPartSize)
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("resultstore: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, fmt.Errorf("resultstore: s3://%s: no AWS region; set Options.Region or AWS_REGION", bucket)
		}
		cfg.Region = "us-east-1" // S3-compatible stores mostly ignore it, but SigV4 needs one
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true
		}
	})
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = opts.PartSize
		u.Concurrency = opts.Concurrency
	})
	return &s3Store{client: client, uploader: uploader, bucket: bucket, prefix: prefix, kmsKeyID: opts.KMSKeyID}, nil
}

// URI returns s3://bucket/prefix/key.
func (s *s3Store) URI(key string) string {
	return "s3://" + s.bucket + "/" + joinKey(s.prefix, key)
}

// putInput builds the upload request, always with server-side encryption.
func (s *s3Store) putInput(key string, body io.Reader, contentType string) *s3.PutObjectInput {
	if contentType == "" {
		contentType = contentTypeFor(key)
	}
	in := &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(joinKey(s.prefix, key)),
		Body:                 body,
		ContentType:          aws.String(contentType),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	}
	if s.kmsKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.kmsKeyID)
	}
	return in
}

// contentTypeFor guesses a content type from the key's extension.
func contentTypeFor(key string) string {
	switch ext := path.Ext(key); ext {
	case ".json":
		return "application/json"
	case ".jsonl":
		return "application/x-ndjson"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".txt", ".log":
		return "text/plain; charset=utf-8"
	default:
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

// mapErr names the operation and URI and wraps ErrBucketNotFound or
// ErrNotFound where the service reported one.
func (s *s3Store) mapErr(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%s %s: s3 bucket %q: %w (%w)", op, s.URI(key), s.bucket, ErrBucketNotFound, err)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%s %s: %w (%w)", op, s.URI(key), ErrNotFound, err)
		}
	}
	return fmt.Errorf("%s %s: %w", op, s.URI(key), err)
}

// Put uploads r with the upload manager: one PutObject below the part size,
// a parallel multipart upload above it.
func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if _, err := s.uploader.Upload(ctx, s.putInput(key, newCheckedReader(ctx, r, size), contentType)); err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

// Writer streams through an io.Pipe into the upload manager, which runs in
// its own goroutine until Close or CloseWithError.
func (s *s3Store) Writer(ctx context.Context, key string) (ObjectWriter, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	// A cancelled ctx fails the pending read, so the upload aborts.
	stop := context.AfterFunc(uctx, func() { pr.CloseWithError(uctx.Err()) })
	w := &s3Writer{pw: pw, cancel: cancel, stop: stop, done: make(chan error, 1)}
	in := s.putInput(key, pr, "")
	go func() {
		_, err := s.uploader.Upload(uctx, in)
		if err != nil {
			err = s.mapErr("put", key, err)
			pr.CloseWithError(err) // unblocks and fails pending writes
		} else {
			pr.Close()
		}
		w.done <- err
	}()
	return w, nil
}

// s3Writer is an in-progress streaming upload.
type s3Writer struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	stop   func() bool
	done   chan error

	mu     sync.Mutex
	closed bool
}

// errAborted is what the upload sees when a writer is aborted with a nil error.
var errAborted = errors.New("resultstore: write aborted")

// Write blocks until the uploader has taken p (into a part buffer).
func (w *s3Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	return w.pw.Write(p)
}

// Close ends the stream and waits for the upload to complete.
func (w *s3Writer) Close() error {
	if !w.markClosed() {
		return ErrClosed
	}
	_ = w.pw.Close()
	err := <-w.done
	w.stop()
	w.cancel()
	return err
}

// CloseWithError fails the stream; the uploader aborts any multipart upload
// (with the writer's context, so a cancelled context can leave parts for a
// bucket lifecycle rule to clean up) and nothing is stored.
func (w *s3Writer) CloseWithError(err error) error {
	if !w.markClosed() {
		return nil
	}
	if err == nil {
		err = errAborted
	}
	_ = w.pw.CloseWithError(err)
	<-w.done
	w.stop()
	w.cancel()
	return nil
}

func (w *s3Writer) markClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.closed = true
	return true
}

// Get opens the object for reading.
func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(joinKey(s.prefix, key)),
	})
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	return out.Body, nil
}

// List pages through ListObjectsV2, skipping folder markers (keys ending in "/").
func (s *s3Store) List(ctx context.Context, prefix string) ([]Object, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	listPrefix := joinKey(s.prefix, p)
	if p == "" && s.prefix != "" {
		listPrefix += "/"
	}
	var objs []Object
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(listPrefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.mapErr("list", p, err)
		}
		for _, o := range page.Contents {
			full := aws.ToString(o.Key)
			rel := full
			if s.prefix != "" {
				rel = strings.TrimPrefix(full, s.prefix+"/")
			}
			if strings.HasSuffix(rel, "/") || !underPrefix(rel, p) {
				continue
			}
			objs = append(objs, Object{Key: rel, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	return objs, nil
}

// DeletePrefix lists the prefix and deletes it with DeleteObjects, 1000
// keys per call. Per-key failures are reported with the count of keys
// that were deleted.
func (s *s3Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for start := 0; start < len(objs); start += deleteBatch {
		batch := objs[start:min(start+deleteBatch, len(objs))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, o := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(joinKey(s.prefix, o.Key))}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return n, s.mapErr("delete", prefix, err)
		}
		n += len(batch) - len(out.Errors)
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return n, fmt.Errorf("delete %s: %d of %d keys failed, first %q: %s: %s", s.URI(prefix),
				len(out.Errors), len(batch), aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return n, nil
}
