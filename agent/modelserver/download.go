package modelserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
)

// S3API is the part of an S3 client the model cache uses; *s3.Client
// implements it.
type S3API interface {
	manager.DownloadAPIClient
	s3.ListObjectsV2APIClient
}

// ModelCache downloads s3:// models into a local directory. Entries are
// keyed by a hash of the objects' relative keys, sizes and ETags, so a
// model is fetched once per content and a changed object gets a new entry.
// An entry is downloaded into a temporary directory, fsynced and renamed
// into place, so a crash mid-way never leaves a usable partial entry. One
// agent should own a cache directory.
type ModelCache struct {
	dir  string
	s3   S3API
	mu   sync.Mutex
	keys map[string]*sync.Mutex // per-entry locks
}

// NewModelCache returns a cache rooted at dir that downloads with client.
func NewModelCache(dir string, client S3API) *ModelCache {
	return &ModelCache{dir: dir, s3: client, keys: map[string]*sync.Mutex{}}
}

// s3Object is one listed object: its key relative to the model root.
type s3Object struct {
	key, rel, etag string
	size           int64
}

// Resolve turns a model source into what a server reads: an s3:// model is
// fetched into the cache, a file:// model is used in place (it must exist)
// and anything else is a hub ID, returned as is.
func (c *ModelCache) Resolve(ctx context.Context, source string) (string, error) {
	switch {
	case strings.HasPrefix(source, "s3://"):
		return c.Fetch(ctx, source)
	case strings.HasPrefix(source, "file://"):
		p := strings.TrimPrefix(source, "file://")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %w", ErrModelSource, err)
		}
		return p, nil
	default:
		return source, nil
	}
}

// Fetch returns the local path of an s3:// object or prefix, downloading it
// unless the cache already holds the same keys and ETags. A URI naming one
// object gives the file's path; a prefix gives a directory that mirrors it.
func (c *ModelCache) Fetch(ctx context.Context, uri string) (string, error) {
	if c == nil || c.s3 == nil {
		return "", fmt.Errorf("%w: %s: no S3 client configured", ErrModelSource, uri)
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	if !strings.HasPrefix(uri, "s3://") || bucket == "" {
		return "", fmt.Errorf("%w: malformed S3 URI %q", ErrModelSource, uri)
	}
	objs, single, err := c.list(ctx, bucket, key)
	if err != nil {
		return "", fmt.Errorf("%w: list %s: %w", ErrModelSource, uri, err)
	}
	manifest := manifestOf(objs, single)
	sum := sha256.Sum256([]byte(manifest))
	hash := hex.EncodeToString(sum[:16])
	entry := filepath.Join(c.dir, "s3", hash)
	local := filepath.Join(entry, "model")
	if single {
		local = filepath.Join(local, objs[0].rel)
	}

	lock := c.lock(hash)
	lock.Lock()
	defer lock.Unlock()
	if b, err := os.ReadFile(filepath.Join(entry, "manifest")); err == nil && string(b) == manifest {
		return local, nil // a complete entry with the same ETags
	}
	if err := os.RemoveAll(entry); err != nil { // not one of ours: start over
		return "", fmt.Errorf("%w: %w", ErrModelSource, err)
	}
	if err := c.download(ctx, bucket, objs, manifest, hash, entry); err != nil {
		return "", fmt.Errorf("%w: download %s: %w", ErrModelSource, uri, err)
	}
	return local, nil
}

// list returns the objects under key, sorted. A key naming an object with
// nothing below it is a single-object model.
func (c *ModelCache) list(ctx context.Context, bucket, key string) ([]s3Object, bool, error) {
	dirPrefix := ""
	if key != "" {
		dirPrefix = strings.TrimSuffix(key, "/") + "/"
	}
	var exact *s3Object
	var objs []s3Object
	pages := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, false, err
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			obj := s3Object{key: k, etag: strings.Trim(aws.ToString(o.ETag), `"`), size: aws.ToInt64(o.Size)}
			switch {
			case k == key && !strings.HasSuffix(k, "/"):
				obj.rel = path.Base(k)
				exact = &obj
			case strings.HasPrefix(k, dirPrefix) && !strings.HasSuffix(k, "/"):
				obj.rel = strings.TrimPrefix(k, dirPrefix)
				if !fs.ValidPath(obj.rel) {
					return nil, false, fmt.Errorf("object key %q escapes the model directory", k)
				}
				objs = append(objs, obj)
			}
		}
	}
	if len(objs) == 0 && exact != nil {
		return []s3Object{*exact}, true, nil
	}
	if len(objs) == 0 {
		return nil, false, fmt.Errorf("no objects at s3://%s/%s", bucket, key)
	}
	slices.SortFunc(objs, func(a, b s3Object) int { return strings.Compare(a.rel, b.rel) })
	return objs, false, nil
}

// manifestOf is the text an entry is keyed by and stores.
func manifestOf(objs []s3Object, single bool) string {
	var b strings.Builder
	b.WriteString("perfleet model cache v1\n")
	if single {
		b.WriteString("object\n")
	} else {
		b.WriteString("prefix\n")
	}
	for _, o := range objs {
		b.WriteString(o.etag + "\t" + strconv.FormatInt(o.size, 10) + "\t" + o.rel + "\n")
	}
	return b.String()
}

// lock returns the mutex of one cache entry.
func (c *ModelCache) lock(hash string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.keys[hash]
	if !ok {
		m = &sync.Mutex{}
		c.keys[hash] = m
	}
	return m
}

// download fetches objs into a temporary directory beside entry, syncs it
// and renames it into place. The caller holds the entry's lock.
func (c *ModelCache) download(ctx context.Context, bucket string, objs []s3Object, manifest, hash, entry string) error {
	root := filepath.Dir(entry)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	stale, _ := filepath.Glob(filepath.Join(root, ".partial-"+hash+"-*"))
	for _, p := range stale { // left by a crash: never used, now removed
		_ = os.RemoveAll(p)
	}
	tmp, err := os.MkdirTemp(root, ".partial-"+hash+"-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	dl := manager.NewDownloader(c.s3)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	dirs := map[string]bool{filepath.Join(tmp, "model"): true}
	for _, o := range objs {
		dst := filepath.Join(tmp, "model", filepath.FromSlash(o.rel))
		for d := filepath.Dir(dst); d != tmp; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		g.Go(func() error { return fetchObject(gctx, dl, bucket, o, dst) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, "manifest"), manifest); err != nil {
		return err
	}
	dirs[tmp] = true
	for _, d := range slices.Backward(slices.Sorted(maps.Keys(dirs))) { // deepest first
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, entry); err != nil {
		if _, serr := os.Stat(filepath.Join(entry, "manifest")); serr == nil {
			return nil // another process finished the same entry first
		}
		return err
	}
	done = true
	return syncDir(root)
}

// fetchObject downloads one object to dst and fsyncs it. IfMatch makes S3
// refuse an object that changed since it was listed.
func fetchObject(ctx context.Context, dl *manager.Downloader, bucket string, o s3Object, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)}
	if o.etag != "" {
		in.IfMatch = aws.String(`"` + o.etag + `"`)
	}
	n, err := dl.Download(ctx, f, in)
	if err == nil && n != o.size {
		err = fmt.Errorf("%s: got %d bytes, listed %d", o.key, n, o.size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeSynced writes a file and fsyncs it.
func writeSynced(name, content string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDir fsyncs a directory so the entries it lists are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
