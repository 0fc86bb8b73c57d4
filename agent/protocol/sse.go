package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrSSELine is returned for a line longer than the reader's limit.
var ErrSSELine = errors.New("sse: line too long")

// SSEReader parses a text/event-stream incrementally with the WHATWG rules
// that matter for LLM streams: lines end in \n or \r\n (a lone \r is not a
// line end here: no LLM server sends one); lines starting with ':' are
// comments (keep-alives); "data:" lines (one optional space after the
// colon) accumulate, joined by \n, until a blank line dispatches the event;
// "event:" names it; other fields (id, retry) are ignored. At EOF a pending
// event whose lines are complete but lack the final blank line is still
// dispatched, leniently; a line cut by EOF gives io.ErrUnexpectedEOF.
type SSEReader struct {
	br      *bufio.Reader
	data    []byte
	event   []byte
	hasData bool
	reset   bool
	maxLine int
	long    []byte
}

// NewSSEReader reads events from r. maxLine bounds a line (default 16 MiB).
func NewSSEReader(r io.Reader, maxLine int) *SSEReader {
	if maxLine <= 0 {
		maxLine = 16 << 20
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16<<10)
	}
	return &SSEReader{br: br, maxLine: maxLine}
}

// Reset reuses the reader for a new stream.
func (s *SSEReader) Reset(r io.Reader) {
	s.br.Reset(r)
	s.data, s.event, s.hasData, s.reset = s.data[:0], s.event[:0], false, false
}

// Next returns the next event's name and data. The slices are valid until
// the next call. At the end of the stream it returns io.EOF; a read error
// is returned as is (a pending event is then discarded).
func (s *SSEReader) Next() (event, data []byte, err error) {
	if s.reset {
		s.data, s.event, s.hasData, s.reset = s.data[:0], s.event[:0], false, false
	}
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && s.hasData {
				s.reset = true
				return s.event, s.data, nil
			}
			return nil, nil, err
		}
		if len(line) == 0 {
			if s.hasData {
				s.reset = true
				return s.event, s.data, nil
			}
			s.event = s.event[:0]
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if s.hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.hasData = true
		case "event":
			s.event = append(s.event[:0], value...)
		}
	}
}

// readLine returns one line without its terminator. The slice is valid
// until the next read.
func (s *SSEReader) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
			if len(s.long) > s.maxLine {
				return nil, ErrSSELine
			}
		}
		line = s.long
	}
	switch err {
	case nil:
		line = line[:len(line)-1]
	case io.EOF:
		if len(line) == 0 {
			return nil, io.EOF
		}
		// A line cut by the end of the stream: the stream was truncated.
		return nil, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
