package atrest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	streamMagic     = "\x00PFS"
	streamVersion   = 1
	streamSaltLen   = 32
	streamFrameSize = StreamChunkSize + StreamChunkOverhead
	streamKeyInfo   = "perfleet atrest stream v1"
)

// Sealed stream framing (version 1); see the package documentation.
const (
	// StreamHeaderSize is the size of a sealed stream's header in bytes.
	StreamHeaderSize = len(streamMagic) + 2 + MaxKeyIDLen + aadTagSize + streamSaltLen
	// StreamChunkSize is the plaintext size of every chunk of a sealed
	// stream but the last.
	StreamChunkSize = 64 << 10
	// StreamChunkOverhead is the bytes each chunk adds (its GCM tag).
	StreamChunkOverhead = tagSize
)

// SealedSize returns the size of a sealed stream holding plaintextSize bytes.
func SealedSize(plaintextSize int64) int64 {
	chunks := plaintextSize/StreamChunkSize + 1 // the last chunk is short, maybe empty
	return int64(StreamHeaderSize) + chunks*StreamChunkOverhead + plaintextSize
}

// PlaintextSize returns the plaintext size of a sealed stream of sealedSize
// bytes, and false if no sealed stream has that size.
func PlaintextSize(sealedSize int64) (int64, bool) {
	rest := sealedSize - int64(StreamHeaderSize)
	if rest < StreamChunkOverhead {
		return 0, false
	}
	full, last := rest/streamFrameSize, rest%streamFrameSize
	if last < StreamChunkOverhead {
		return 0, false
	}
	return full*StreamChunkSize + last - StreamChunkOverhead, true
}

// IsSealedStream reports whether prefix, the first bytes of a stream, starts
// a sealed stream header. Five bytes are enough to decide.
func IsSealedStream(prefix []byte) bool {
	return len(prefix) >= len(streamMagic)+1 &&
		string(prefix[:len(streamMagic)]) == streamMagic && prefix[len(streamMagic)] == streamVersion
}

// streamAEAD derives the per-stream key from the data key and the salt.
func streamAEAD(e *keyEntry, salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, e.raw, salt, streamKeyInfo, KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(n uint64) []byte {
	var nonce [nonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], n)
	return nonce[:]
}

// chunkAD returns the associated data for chunk n: the header, the chunk
// number, the final flag and the caller's associated data.
func chunkAD(dst, header []byte, n uint64, final bool, aad []byte) []byte {
	dst = append(dst[:0], header...)
	dst = binary.BigEndian.AppendUint64(dst, n)
	if final {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	return append(dst, aad...)
}

// streamWriter seals a stream chunk by chunk.
type streamWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	aad    []byte
	buf    []byte // pending plaintext, < StreamChunkSize bytes between calls
	out    []byte // sealing buffer
	ad     []byte
	n      uint64
	wrote  bool // header written
	closed bool
	err    error
}

func newStreamWriter(w io.Writer, kr *Keyring, aad []byte) (*streamWriter, error) {
	if kr == nil {
		return nil, errors.New("atrest: nil keyring")
	}
	e := kr.activeEntry()
	if e == nil {
		return nil, errors.New("atrest: keyring has no active key")
	}
	salt := randomBytes(streamSaltLen)
	aead, err := streamAEAD(e, salt)
	if err != nil {
		return nil, err
	}
	header := make([]byte, StreamHeaderSize)
	n := copy(header, streamMagic)
	header[n] = streamVersion
	header[n+1] = byte(len(e.id))
	n += 2
	copy(header[n:], e.id)
	n += MaxKeyIDLen
	tag := aadTag(aad)
	n += copy(header[n:], tag[:])
	copy(header[n:], salt)
	return &streamWriter{
		w:      w,
		aead:   aead,
		header: header,
		aad:    bytes.Clone(aad),
		buf:    make([]byte, 0, StreamChunkSize),
		out:    make([]byte, 0, streamFrameSize),
	}, nil
}

func (s *streamWriter) writeHeader() error {
	if s.wrote {
		return nil
	}
	s.wrote = true
	_, err := s.w.Write(s.header)
	return err
}

func (s *streamWriter) sealChunk(final bool) error {
	s.ad = chunkAD(s.ad, s.header, s.n, final, s.aad)
	s.out = s.aead.Seal(s.out[:0], chunkNonce(s.n), s.buf, s.ad)
	s.n++
	s.buf = s.buf[:0]
	_, err := s.w.Write(s.out)
	return err
}

// Write buffers p and writes each full chunk as it fills. It returns
// len(p) unless the underlying writer fails.
func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("atrest: write to closed sealed stream")
	}
	if s.err = s.writeHeader(); s.err != nil {
		return 0, s.err
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), StreamChunkSize-len(s.buf))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		written += n
		// A full chunk is never the last one: the stream always ends
		// with a short (maybe empty) chunk, so seal it now.
		if len(s.buf) == StreamChunkSize {
			if s.err = s.sealChunk(false); s.err != nil {
				return written, s.err
			}
		}
	}
	return written, nil
}

// Close writes the final chunk. It does not close the underlying writer.
func (s *streamWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.err != nil {
		return s.err
	}
	if s.err = s.writeHeader(); s.err != nil {
		return s.err
	}
	s.err = s.sealChunk(true)
	return s.err
}

// errWriteCloser is what SealWriter returns when it cannot start.
type errWriteCloser struct{ err error }

func (e errWriteCloser) Write([]byte) (int, error) { return 0, e.err }
func (e errWriteCloser) Close() error              { return e.err }

// SealWriter returns a writer that seals everything written to it into w as
// a chunked stream under kr's active key (at the time of the call), with aad
// authenticated in every chunk. Close must be called to write the final
// chunk; without it the stream reads back as truncated. Close does not close
// w. Errors (a nil keyring, a failing w) are returned by Write and Close.
func SealWriter(w io.Writer, kr *Keyring, aad []byte) io.WriteCloser {
	sw, err := newStreamWriter(w, kr, aad)
	if err != nil {
		return errWriteCloser{err}
	}
	return sw
}

// streamReader opens a sealed stream chunk by chunk.
type streamReader struct {
	r      io.Reader
	aead   cipher.AEAD
	header []byte
	aad    []byte
	frame  []byte
	pbuf   []byte // decryption buffer
	plain  []byte // decrypted, not yet returned (a tail of pbuf)
	ad     []byte
	n      uint64
	total  int64
	want   int64 // expected plaintext size, or -1
	done   bool
	err    error
}

// readStreamHeader reads and checks a stream header from r.
func readStreamHeader(r io.Reader, kr *Keyring, aad []byte) (*streamReader, error) {
	if kr == nil {
		return nil, errors.New("atrest: nil keyring")
	}
	header := make([]byte, StreamHeaderSize)
	n, err := io.ReadFull(r, header)
	if !IsSealedStream(header[:n]) {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, ErrNotSealed
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: header cut short", ErrTruncated)
		}
		return nil, err
	}
	idLen := int(header[5])
	if idLen == 0 || idLen > MaxKeyIDLen {
		return nil, fmt.Errorf("%w: bad key ID length in stream header", ErrTampered)
	}
	off := len(streamMagic) + 2
	e, err := kr.entry(string(header[off : off+idLen]))
	if err != nil {
		return nil, err
	}
	off += MaxKeyIDLen
	if tag := aadTag(aad); !bytes.Equal(tag[:], header[off:off+aadTagSize]) {
		return nil, ErrWrongAAD
	}
	off += aadTagSize
	aead, err := streamAEAD(e, header[off:off+streamSaltLen])
	if err != nil {
		return nil, err
	}
	return &streamReader{
		r:      r,
		aead:   aead,
		header: header,
		aad:    bytes.Clone(aad),
		frame:  make([]byte, streamFrameSize),
		want:   -1,
	}, nil
}

// next reads, authenticates and decrypts the next chunk.
func (s *streamReader) next() error {
	n, err := io.ReadFull(s.r, s.frame)
	final := false
	switch {
	case err == nil:
		// A full frame: never the last chunk.
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: ends after chunk %d without its final chunk", ErrTruncated, s.n)
	case errors.Is(err, io.ErrUnexpectedEOF):
		final = true
	default:
		return err
	}
	if final && n < StreamChunkOverhead {
		return fmt.Errorf("%w: chunk %d cut short", ErrTruncated, s.n)
	}
	s.ad = chunkAD(s.ad, s.header, s.n, final, s.aad)
	s.pbuf, err = s.aead.Open(s.pbuf[:0], chunkNonce(s.n), s.frame[:n], s.ad)
	if err != nil {
		// A short frame that fails is either an altered final chunk or
		// a stream cut inside a chunk; say both.
		return &chunkError{chunk: s.n, short: final}
	}
	s.plain = s.pbuf
	s.n++
	s.total += int64(len(s.plain))
	if final {
		s.done = true
		if s.want >= 0 && s.total != s.want {
			return fmt.Errorf("%w: stream holds %d bytes, its stored size says %d", ErrTampered, s.total, s.want)
		}
	}
	return nil
}

// Read returns decrypted plaintext; every byte it returns has been
// authenticated. It returns io.EOF only after the final chunk authenticated.
func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.plain) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			s.err = err
			s.plain = nil
			return 0, err
		}
	}
	n := copy(p, s.plain)
	s.plain = s.plain[n:]
	return n, nil
}

// OpenReader reads a stream written by SealWriter with the same aad and
// returns a reader of its plaintext. It reads the header at once and fails
// with ErrNotSealed if r does not start with one, an *UnknownKeyError if kr
// lacks the stream's key, or ErrWrongAAD. The returned reader fails with
// ErrTampered or ErrTruncated if the stream was altered or cut short.
func OpenReader(r io.Reader, kr *Keyring, aad []byte) (io.Reader, error) {
	return readStreamHeader(r, kr, aad)
}

// chunkError reports a chunk that failed authentication. It matches
// ErrTampered, and also ErrTruncated when the chunk was short (the stream
// may have been cut inside it).
type chunkError struct {
	chunk uint64
	short bool
}

func (e *chunkError) Error() string {
	if e.short {
		return fmt.Sprintf("atrest: chunk %d of sealed stream failed authentication: the stream was cut short or tampered with", e.chunk)
	}
	return fmt.Sprintf("atrest: chunk %d of sealed stream failed authentication (tampered or corrupted)", e.chunk)
}

func (e *chunkError) Unwrap() []error {
	if e.short {
		return []error{ErrTampered, ErrTruncated}
	}
	return []error{ErrTampered}
}
