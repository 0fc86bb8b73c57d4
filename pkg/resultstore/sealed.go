package resultstore

import (
	"bufio"
	"context"
	"io"

	"github.com/perfleet/perfleet/pkg/atrest"
)

// Sealed wraps a store so that every object is written encrypted with the
// keyring's active key (pkg/atrest's chunked AES-256-GCM stream, with the
// object's key as associated data, so objects cannot be swapped) and read
// back decrypted. Objects written before sealing was turned on read as
// they are. Keys, listings and sizes stay visible; sizes are the sealed
// ones. Decrypt a sealed file by hand with 'perfleet operator
// encryption-key decrypt'.
func Sealed(st Store, kr *atrest.Keyring) Store { return &sealedStore{Store: st, kr: kr} }

type sealedStore struct {
	Store
	kr *atrest.Keyring
}

func (s *sealedStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	pr, pw := io.Pipe()
	go func() {
		w := atrest.SealWriter(pw, s.kr, []byte(key))
		_, err := io.Copy(w, io.LimitReader(r, size))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	err := s.Store.Put(ctx, key, pr, atrest.SealedSize(size), "application/octet-stream")
	pr.CloseWithError(err) // unblocks the sealing goroutine on failure
	return err
}

func (s *sealedStore) Writer(ctx context.Context, key string) (ObjectWriter, error) {
	ow, err := s.Store.Writer(ctx, key)
	if err != nil {
		return nil, err
	}
	return &sealedWriter{ow: ow, w: atrest.SealWriter(ow, s.kr, []byte(key))}, nil
}

func (s *sealedStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(rc)
	if head, _ := br.Peek(8); !atrest.IsSealedStream(head) {
		return struct {
			io.Reader
			io.Closer
		}{br, rc}, nil // written before sealing was on
	}
	r, err := atrest.OpenReader(br, s.kr, []byte(key))
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, rc}, nil
}

type sealedWriter struct {
	ow ObjectWriter
	w  io.WriteCloser
}

func (w *sealedWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *sealedWriter) Close() error {
	if err := w.w.Close(); err != nil {
		_ = w.ow.CloseWithError(err)
		return err
	}
	return w.ow.Close()
}

func (w *sealedWriter) CloseWithError(err error) error { return w.ow.CloseWithError(err) }
