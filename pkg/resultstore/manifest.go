package resultstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ManifestName is the file name WriteManifest writes under its prefix.
const ManifestName = "MANIFEST.txt"

// WriteManifest writes prefix/MANIFEST.txt listing files, which must all lie
// below prefix (results layouts put one at the job root). The format is
// UTF-8 text with one line per file, sorted by path in byte order:
//
//	<size> <sha256> <path>\n
//
// size is the length in bytes (decimal), sha256 the lowercase hex SHA-256
// of the content, and path the file's key relative to prefix, running to
// the end of the line (it may contain spaces; keys cannot contain control
// characters). There is no header line. A file listed under the manifest's
// own name is skipped. A file whose SHA256 is empty is read back from store
// to hash it, and the size read replaces its Size. Check a local copy with:
//
//	while read -r size sum path; do echo "$sum  $path"; done < MANIFEST.txt | sha256sum -c
func WriteManifest(ctx context.Context, store Store, prefix string, files []Object) error {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return err
	}
	entries := make([]Object, 0, len(files))
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if err := ValidateKey(f.Key); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if f.Key == p || !underPrefix(f.Key, p) {
			return fmt.Errorf("manifest: %w", &KeyError{Key: f.Key, Reason: fmt.Sprintf("not below manifest prefix %q", p)})
		}
		rel := strings.TrimPrefix(f.Key, p+"/")
		if rel == ManifestName {
			continue
		}
		if seen[rel] {
			return fmt.Errorf("manifest: %w", &KeyError{Key: f.Key, Reason: "listed twice"})
		}
		seen[rel] = true
		if f.SHA256 == "" {
			if f.Size, f.SHA256, err = hashObject(ctx, store, f.Key); err != nil {
				return fmt.Errorf("manifest: %w", err)
			}
		} else if !isSHA256Hex(f.SHA256) {
			return fmt.Errorf("manifest: %s: SHA256 %q is not 64 lowercase hex digits", f.Key, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("manifest: %s: negative size %d", f.Key, f.Size)
		}
		f.Key = rel
		entries = append(entries, f)
	}
	slices.SortFunc(entries, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	var buf bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&buf, "%d %s %s\n", e.Size, e.SHA256, e.Key)
	}
	return store.Put(ctx, joinKey(p, ManifestName), bytes.NewReader(buf.Bytes()), int64(buf.Len()),
		"text/plain; charset=utf-8")
}

// ReadManifest parses a MANIFEST.txt written by WriteManifest. Each
// returned Object's Key is relative to the manifest's directory.
func ReadManifest(r io.Reader) ([]Object, error) {
	var objs []Object
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for line := 1; sc.Scan(); line++ {
		fields := strings.SplitN(sc.Text(), " ", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("manifest line %d: want \"<size> <sha256> <path>\"", line)
		}
		size, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("manifest line %d: bad size %q", line, fields[0])
		}
		if !isSHA256Hex(fields[1]) {
			return nil, fmt.Errorf("manifest line %d: bad sha256 %q", line, fields[1])
		}
		if err := ValidateKey(fields[2]); err != nil {
			return nil, fmt.Errorf("manifest line %d: %w", line, err)
		}
		objs = append(objs, Object{Key: fields[2], Size: size, SHA256: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return objs, nil
}

// hashObject reads key from store and returns its size and hex SHA-256.
func hashObject(ctx context.Context, store Store, key string) (int64, string, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, newCheckedReader(ctx, rc, -1))
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", store.URI(key), err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
