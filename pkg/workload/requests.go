package workload

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeModels reads `model` (alias model_names): one name or a list of
// distinct names.
func decodeModels(d *decoder, n *yaml.Node, path string, p *Parameters) {
	if n.Kind != yaml.SequenceNode {
		if v, ok := d.text(n, path); ok {
			p.Models = []string{v}
		}
		return
	}
	if len(n.Content) == 0 {
		d.fail(path, "must not be an empty list")
		return
	}
	seen := map[string]bool{}
	var models []string
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		v, ok := d.text(item, ip)
		if !ok {
			continue
		}
		if seen[v] {
			d.fail(ip, fmt.Sprintf("duplicate model %q", v))
			continue
		}
		seen[v] = true
		models = append(models, v)
	}
	p.Models = models
}

// encodeModels always writes a list.
func encodeModels(p *Parameters) (any, bool) {
	if len(p.Models) == 0 {
		return nil, false
	}
	return append([]string(nil), p.Models...), true
}

// readEndpointPath reads an absolute request path such as /v1/chat/completions.
func readEndpointPath(d *decoder, n *yaml.Node, path string) (string, bool) {
	v, ok := d.text(n, path)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t\r\n#") || len(v) > 2048 {
		d.fail(path, `must be a URL path starting with "/" (e.g. /v1/chat/completions), without spaces or '#'`)
		return "", false
	}
	return v, true
}

// headerName is an HTTP header field name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// credentialHeaders are header names whose values are credentials; they
// must come from secrets so that no plaintext credential is stored.
var credentialHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "x-api-key": true, "api-key": true, "cookie": true,
}

// decodeHeaders reads the `headers` extension: header name → value.
func decodeHeaders(d *decoder, n *yaml.Node, path string, p *Parameters) {
	entries, ok := d.mapping(n, path)
	if !ok {
		return
	}
	var out map[string]string
	for _, e := range entries {
		if !headerName.MatchString(e.key) || len(e.key) > 256 {
			d.fail(e.path, "must be a valid HTTP header name")
			continue
		}
		if credentialHeaders[strings.ToLower(e.key)] {
			d.fail(e.path, "must not carry a credential in plain text; put a secret reference in secrets.api_key instead")
			continue
		}
		v, ok := d.text(e.value, e.path)
		if !ok {
			continue
		}
		if strings.ContainsAny(v, "\r\n\x00") || len(v) > 8192 {
			d.fail(e.path, "must be a single-line value of at most 8192 bytes")
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[e.key] = v
	}
	p.Headers = out
}

// encodeHeaders writes the headers back as a mapping.
func encodeHeaders(p *Parameters) (any, bool) {
	return p.Headers, len(p.Headers) > 0
}

// datasetName is the shape of a public dataset name (e.g. sharegpt).
var datasetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// readDatasetName reads public_dataset: a lower-case dataset name. The
// list of datasets an agent can fetch is the agent's business.
func readDatasetName(d *decoder, n *yaml.Node, path string) (string, bool) {
	v, ok := d.text(n, path)
	if !ok {
		return "", false
	}
	v = strings.ToLower(v)
	if !datasetName.MatchString(v) {
		d.fail(path, "must be a dataset name such as sharegpt (letters, digits, '_', '-', '.')")
		return "", false
	}
	return v, true
}

// readDatasetType reads custom_dataset_type: AIPerf's layouts and the file
// formats SageMaker names (openai-chat, openai-completions, sharegpt). Case
// and '-' versus '_' are ignored; nothing else is guessed.
var readDatasetType = oneOf[DatasetType](nil, DatasetSingleTurn, DatasetMultiTurn, DatasetMooncakeTrace,
	DatasetRandomPool, DatasetOpenAIChat, DatasetOpenAICompletions, DatasetShareGPT)

// readAudioDepth reads video_audio_depth: 8, 16, 24 or 32 bits.
func readAudioDepth(d *decoder, n *yaml.Node, path string) (int, bool) {
	v, ok := d.integer(n, path)
	if !ok {
		return 0, false
	}
	switch v {
	case 8, 16, 24, 32:
		return int(v), true
	}
	d.fail(path, "must be one of 8, 16, 24, 32")
	return 0, false
}
