package modelserver

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
)

// maxLineBytes caps one remembered log line; longer lines are cut.
const maxLineBytes = 2048

// logSink receives a server's stdout and stderr. It appends them to a log
// file that rotates to "<path>.1" when it would pass maxBytes (so between
// maxBytes and 2×maxBytes of the newest output are kept on disk) and keeps
// the last lines in memory for failure reasons. Writes never fail: a disk
// error is remembered and the in-memory lines are still kept.
type logSink struct {
	mu      sync.Mutex
	path    string
	max     int64
	f       *os.File
	size    int64
	err     error
	ring    []string // last len(ring) complete lines, oldest at next
	next    int
	count   int
	partial []byte // the current unterminated line
}

// openLogSink creates (or truncates) the log file at path.
func openLogSink(path string, maxBytes int64, lines int) (*logSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: log file: %w", ErrStart, err)
	}
	_ = os.Remove(path + ".1") // a previous server's rotated output
	return &logSink{path: path, max: maxBytes, f: f, ring: make([]string, max(lines, 1))}, nil
}

// Write appends p to the file and the line ring. It always reports success.
func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeFile(p)
	l.remember(p)
	return len(p), nil
}

// writeFile appends to the file, rotating it first when it would pass max.
func (l *logSink) writeFile(p []byte) {
	if l.f == nil {
		return
	}
	if int64(len(p)) > l.max {
		p = p[int64(len(p))-l.max:]
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		_ = l.f.Close()
		l.f = nil
		if err := os.Rename(l.path, l.path+".1"); err != nil && l.err == nil {
			l.err = err
		}
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			if l.err == nil {
				l.err = err
			}
			return
		}
		l.f, l.size = f, 0
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil && l.err == nil {
		l.err = err
	}
}

// remember splits p into lines and keeps the newest in the ring.
func (l *logSink) remember(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLineBytes - len(l.partial)
			l.partial = append(l.partial, p[:max(0, min(room, len(p)))]...)
			return
		}
		room := maxLineBytes - len(l.partial)
		l.partial = append(l.partial, p[:max(0, min(room, i))]...)
		l.push(strings.TrimRight(string(l.partial), "\r"))
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
}

// push adds one complete line to the ring.
func (l *logSink) push(line string) {
	l.ring[l.next] = line
	l.next = (l.next + 1) % len(l.ring)
	l.count = min(l.count+1, len(l.ring))
}

// LastLines returns the newest lines, oldest first, including an
// unterminated last line.
func (l *logSink) LastLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, l.count+1)
	start := (l.next - l.count + len(l.ring)) % len(l.ring)
	for i := range l.count {
		out = append(out, l.ring[(start+i)%len(l.ring)])
	}
	if len(l.partial) > 0 {
		out = append(out, string(l.partial))
	}
	return out
}

// Err returns the first error writing the log file, if any.
func (l *logSink) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close syncs and closes the log file.
func (l *logSink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
