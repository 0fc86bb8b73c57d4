package dataset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/perfleet/perfleet/agent/protocol"
)

// Formats of JSONL datasets.
const (
	FormatShareGPT    = "sharegpt"           // {"conversations":[{"from":"human","value":…},…]}
	FormatOpenAIChat  = "openai-chat"        // {"messages":[{"role":…,"content":…}], "max_tokens"?}
	FormatCompletions = "openai-completions" // {"prompt": …, "max_tokens"?}
	FormatSingleTurn  = "single_turn"        // AIPerf: {"text": …} or {"texts": […]}
)

// NormalizeFormat maps accepted spellings to a Format constant.
func NormalizeFormat(f string) string {
	k := strings.ReplaceAll(strings.ToLower(f), "_", "-")
	switch k {
	case "sharegpt":
		return FormatShareGPT
	case "openai-chat", "chat":
		return FormatOpenAIChat
	case "openai-completions", "completions", "prompt":
		return FormatCompletions
	case "single-turn":
		return FormatSingleTurn
	}
	return f
}

type jsonlLine struct {
	Conversations []struct {
		From  string `json:"from"`
		Value string `json:"value"`
	} `json:"conversations"`
	Messages  []protocol.Message `json:"messages"`
	Prompt    *string            `json:"prompt"`
	Text      *string            `json:"text"`
	Texts     []string           `json:"texts"`
	MaxTokens int                `json:"max_tokens"`
	OutputLen int                `json:"output_length"`
}

// LoadJSONL reads a dataset of the given format. For ShareGPT the first
// human turn is the prompt and the following gpt turn's token count the
// output length. A malformed or unusable line fails with its line number.
func LoadJSONL(r io.Reader, format string, tok *Tokenizer) ([]Entry, error) {
	format = NormalizeFormat(format)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var out []Entry
	line := 0
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		var l jsonlLine
		if err := json.Unmarshal([]byte(b), &l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrDataset, line, err)
		}
		e, err := entryOf(&l, format, tok)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrDataset, line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrDataset, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrDataset)
	}
	return out, nil
}

func entryOf(l *jsonlLine, format string, tok *Tokenizer) (Entry, error) {
	e := Entry{MaxTokens: l.MaxTokens}
	if e.MaxTokens == 0 {
		e.MaxTokens = l.OutputLen
	}
	switch format {
	case FormatShareGPT:
		for i, t := range l.Conversations {
			if t.From == "human" || t.From == "user" {
				e.Prompt = t.Value
				if i+1 < len(l.Conversations) && e.MaxTokens == 0 {
					e.MaxTokens = tok.Count(l.Conversations[i+1].Value)
				}
				break
			}
		}
		if e.Prompt == "" {
			return e, fmt.Errorf("no human turn in conversations")
		}
		e.Messages = []protocol.Message{{Role: "user", Content: e.Prompt}}
	case FormatOpenAIChat:
		if len(l.Messages) == 0 {
			return e, fmt.Errorf("missing messages")
		}
		e.Messages = l.Messages
		e.Prompt = (&protocol.Request{Messages: l.Messages}).Text()
	case FormatCompletions, FormatSingleTurn:
		switch {
		case l.Prompt != nil:
			e.Prompt = *l.Prompt
		case l.Text != nil:
			e.Prompt = *l.Text
		case len(l.Texts) > 0:
			e.Prompt = strings.Join(l.Texts, "\n")
		default:
			return e, fmt.Errorf("missing prompt")
		}
		e.Messages = []protocol.Message{{Role: "user", Content: e.Prompt}}
	default:
		return e, fmt.Errorf("unknown dataset format %q", format)
	}
	e.InputTokens = tok.Count(e.Prompt)
	return e, nil
}
