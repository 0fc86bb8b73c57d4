package protocol

import (
	"bytes"
	"unicode/utf8"
)

// fastChunk reads an OpenAI chunk (or whole response) without reflection:
// a streamed token costs one pass over its bytes and no allocation. It
// understands exactly the fields that OpenAI.Do's encoding/json path reads
// and validates everything else it skips; on anything unusual (invalid
// JSON, a type it does not expect, escaped text that must be kept, keys
// that differ only in case, repeated keys, deep nesting) it gives up, and
// the caller uses encoding/json, so both paths give the same results.
type fastChunk struct {
	d   []byte
	i   int
	bad bool // give up: use encoding/json

	keep      bool
	text      []byte // appended output text when keep
	reasoning []byte

	choices  int
	r        eventResult
	usage    *Usage
	hasError bool
	errMsg   []byte
}

// field is a string field's raw value.
type field struct {
	raw    []byte
	set    bool // present and not null
	escape bool // contains a backslash escape
}

func (f *fastChunk) ws() {
	for f.i < len(f.d) {
		switch f.d[f.i] {
		case ' ', '\t', '\n', '\r':
			f.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (f *fastChunk) peek() byte {
	f.ws()
	if f.i < len(f.d) {
		return f.d[f.i]
	}
	return 0
}

func (f *fastChunk) lit(s string) bool {
	if !bytes.HasPrefix(f.d[f.i:], []byte(s)) {
		f.bad = true
		return false
	}
	f.i += len(s)
	return true
}

// str reads a string at f.i (after peek returned '"'), validating escapes.
func (f *fastChunk) str() field {
	f.i++
	start, esc := f.i, false
	for f.i < len(f.d) {
		c := f.d[f.i]
		switch {
		case c == '"':
			v := field{raw: f.d[start:f.i], set: true, escape: esc}
			f.i++
			return v
		case c == '\\':
			esc = true
			if f.i+1 >= len(f.d) {
				f.bad = true
				return field{}
			}
			switch f.d[f.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				f.i += 2
			case 'u':
				if f.i+6 > len(f.d) {
					f.bad = true
					return field{}
				}
				if _, ok := parseUint(f.d[f.i+2:f.i+6], 16); !ok {
					f.bad = true
					return field{}
				}
				f.i += 6
			default:
				f.bad = true
				return field{}
			}
		case c < 0x20:
			f.bad = true
			return field{}
		default:
			f.i++
		}
	}
	f.bad = true
	return field{}
}

// strOrNull reads a string or null; anything else gives up.
func (f *fastChunk) strOrNull() field {
	switch f.peek() {
	case '"':
		return f.str()
	case 'n':
		f.lit("null")
		return field{}
	}
	f.bad = true
	return field{}
}

// number skips a JSON number.
func (f *fastChunk) number() {
	d, i := f.d, f.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > s
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		f.bad = true
		return
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			f.bad = true
			return
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			f.bad = true
			return
		}
	}
	f.i = i
}

// integer reads a JSON integer (or null, as 0) into an int64; a fraction,
// an exponent or an overflow gives up.
func (f *fastChunk) integer() int64 {
	if f.peek() == 'n' {
		f.lit("null")
		return 0
	}
	neg := f.i < len(f.d) && f.d[f.i] == '-'
	if neg {
		f.i++
	}
	start := f.i
	for f.i < len(f.d) && f.d[f.i] >= '0' && f.d[f.i] <= '9' {
		f.i++
	}
	digits := f.d[start:f.i]
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		f.bad = true
		return 0
	}
	if f.i < len(f.d) && (f.d[f.i] == '.' || f.d[f.i] == 'e' || f.d[f.i] == 'E') {
		f.bad = true
		return 0
	}
	n, _ := parseUint(digits, 10)
	if neg {
		return -int64(n)
	}
	return int64(n)
}

// skip validates and skips any value.
func (f *fastChunk) skip(depth int) {
	if depth > 64 {
		f.bad = true
		return
	}
	switch f.peek() {
	case '"':
		f.str()
	case '{':
		f.object(func(key []byte) bool { return false }, depth)
	case '[':
		f.array(func() { f.skip(depth + 1) }, depth)
	case 't':
		f.lit("true")
	case 'f':
		f.lit("false")
	case 'n':
		f.lit("null")
	default:
		f.number()
	}
}

// object reads an object at f.i; onKey handles a key's value and reports
// whether it did (unhandled values are skipped). Keys equal to a handled
// one but for case, and repeated handled keys, give up (encoding/json
// matches keys case-insensitively and merges repeats).
func (f *fastChunk) object(onKey func(key []byte) bool, depth int) {
	f.i++ // '{'
	if f.peek() == '}' {
		f.i++
		return
	}
	for !f.bad {
		if f.peek() != '"' {
			f.bad = true
			return
		}
		k := f.str()
		if f.bad || k.escape || f.peek() != ':' {
			f.bad = true
			return
		}
		f.i++
		f.ws()
		if !onKey(k.raw) {
			f.skip(depth + 1)
		}
		switch f.peek() {
		case ',':
			f.i++
		case '}':
			f.i++
			return
		default:
			f.bad = true
		}
	}
}

// array reads an array at f.i, calling elem for each element.
func (f *fastChunk) array(elem func(), depth int) {
	f.i++ // '['
	if f.peek() == ']' {
		f.i++
		return
	}
	for !f.bad {
		elem()
		switch f.peek() {
		case ',':
			f.i++
		case ']':
			f.i++
			return
		default:
			f.bad = true
		}
	}
}

// keys tracks the handled keys of one object.
type keys struct {
	names []string
	seen  uint32
}

// match returns the index of key among names, -1 for an unrelated key;
// a repeated or case-folded match gives up.
func (k *keys) match(f *fastChunk, key []byte) int {
	for i, n := range k.names {
		if string(key) == n {
			if k.seen&(1<<i) != 0 {
				f.bad = true
				return -1
			}
			k.seen |= 1 << i
			return i
		}
		if bytes.EqualFold(key, []byte(n)) {
			f.bad = true
			return -1
		}
	}
	return -1
}

var (
	topKeys    = []string{"choices", "usage", "error"}
	choiceKeys = []string{"delta", "message", "text", "finish_reason"}
	deltaKeys  = []string{"content", "reasoning_content", "reasoning", "tool_calls"}
	usageKeys  = []string{"prompt_tokens", "completion_tokens", "completion_tokens_details"}
	detailKeys = []string{"reasoning_tokens"}
	errorKeys  = []string{"message"}
)

// delta is a choice's delta or message.
type delta struct {
	present                        bool
	content, reasoningC, reasoning field
	tools                          int
}

func (f *fastChunk) delta(d *delta, depth int) {
	switch f.peek() {
	case 'n':
		f.lit("null")
		return
	case '{':
	default:
		f.bad = true
		return
	}
	d.present = true
	k := keys{names: deltaKeys}
	f.object(func(key []byte) bool {
		switch k.match(f, key) {
		case 0:
			d.content = f.strOrNull()
		case 1:
			d.reasoningC = f.strOrNull()
		case 2:
			d.reasoning = f.strOrNull()
		case 3:
			switch f.peek() {
			case 'n':
				f.lit("null")
			case '[':
				f.array(func() { d.tools++; f.skip(depth + 2) }, depth+1)
			default:
				f.bad = true
			}
		default:
			return false
		}
		return true
	}, depth)
}

// keepStr appends a kept string's text; escapes or invalid UTF-8 give up
// (encoding/json would rewrite them).
func (f *fastChunk) keepStr(dst *[]byte, v field) {
	if !v.set || len(v.raw) == 0 {
		return
	}
	if v.escape || !utf8.Valid(v.raw) {
		f.bad = true
		return
	}
	*dst = append(*dst, v.raw...)
}

func (f *fastChunk) choice(depth int) {
	switch f.peek() {
	case 'n': // a null element is an empty choice
		f.lit("null")
		f.choices++
		return
	case '{':
	default:
		f.bad = true
		return
	}
	f.choices++
	var dl, msg delta
	var text, finish field
	k := keys{names: choiceKeys}
	f.object(func(key []byte) bool {
		switch k.match(f, key) {
		case 0:
			f.delta(&dl, depth+1)
		case 1:
			f.delta(&msg, depth+1)
		case 2:
			text = f.strOrNull()
		case 3:
			finish = f.strOrNull()
		default:
			return false
		}
		return true
	}, depth)
	if f.bad {
		return
	}
	d := &dl
	if !dl.present {
		d = &msg
	}
	if d.present {
		if len(d.content.raw) > 0 || len(d.reasoningC.raw) > 0 || len(d.reasoning.raw) > 0 || d.tools > 0 {
			f.r.content = true
		}
		if len(d.content.raw) > 0 || d.tools > 0 {
			f.r.output = true
		}
		if f.keep {
			f.keepStr(&f.text, d.content)
			f.keepStr(&f.reasoning, d.reasoningC)
			f.keepStr(&f.reasoning, d.reasoning)
		}
	}
	if len(text.raw) > 0 {
		f.r.content, f.r.output = true, true
		if f.keep {
			f.keepStr(&f.text, text)
		}
	}
	if len(finish.raw) > 0 {
		f.r.done = true
	}
}

func (f *fastChunk) usageObj(depth int) {
	switch f.peek() {
	case 'n':
		f.lit("null")
		return
	case '{':
	default:
		f.bad = true
		return
	}
	u := &Usage{}
	f.usage = u
	k := keys{names: usageKeys}
	f.object(func(key []byte) bool {
		switch k.match(f, key) {
		case 0:
			u.PromptTokens = f.integer()
		case 1:
			u.CompletionTokens = f.integer()
		case 2:
			switch f.peek() {
			case 'n':
				f.lit("null")
			case '{':
				dk := keys{names: detailKeys}
				f.object(func(key []byte) bool {
					if dk.match(f, key) == 0 {
						u.ReasoningTokens = f.integer()
						return true
					}
					return false
				}, depth+1)
			default:
				f.bad = true
			}
		default:
			return false
		}
		return true
	}, depth)
}

func (f *fastChunk) errorObj(depth int) {
	switch f.peek() {
	case 'n':
		f.lit("null")
		return
	case '{':
	default:
		f.bad = true
		return
	}
	f.hasError = true
	k := keys{names: errorKeys}
	f.object(func(key []byte) bool {
		if k.match(f, key) != 0 {
			return false
		}
		m := f.strOrNull()
		if m.escape || !utf8.Valid(m.raw) {
			f.bad = true
		}
		f.errMsg = m.raw
		return true
	}, depth)
}

// parse reads the whole document; it reports false to give up.
func (f *fastChunk) parse() bool {
	if f.peek() != '{' {
		return false
	}
	k := keys{names: topKeys}
	f.object(func(key []byte) bool {
		switch k.match(f, key) {
		case 0:
			switch f.peek() {
			case 'n':
				f.lit("null")
			case '[':
				f.array(func() { f.choice(2) }, 1)
			default:
				f.bad = true
			}
		case 1:
			f.usageObj(1)
		case 2:
			f.errorObj(1)
		default:
			return false
		}
		return true
	}, 0)
	// Only white space may follow the object. peek's 0 means the end, but
	// a NUL byte in the data reads the same, so check the position.
	f.ws()
	return !f.bad && f.i == len(f.d)
}
