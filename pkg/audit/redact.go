package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"gopkg.in/yaml.v3"
)

// Hidden replaces redacted values: CloudTrail's marker for fields it does
// not log.
const Hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"

// hiddenJSON is Hidden as a JSON string, returned when input cannot be
// parsed and so cannot be redacted field by field.
var hiddenJSON = json.RawMessage(`"` + Hidden + `"`)

// sensitiveWords are matched against names lowercased with '_', '-', '.'
// and ' ' removed.
var sensitiveWords = []string{
	"secret", "token", "password", "passwd", "credential", "privatekey",
	"apikey", "accesskeysecret", "sessiontoken", "authorization",
}

// nonSecretNames are normalized names that contain a sensitive word but
// never hold a secret: pagination and idempotency tokens, which CloudTrail
// logs as well.
var nonSecretNames = map[string]bool{
	"nexttoken":   true,
	"clienttoken": true,
}

// normalizeName lowercases name and drops '_', '-', '.' and ' '.
func normalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + ('a' - 'A'))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// IsIdentifierName reports whether name names an identifier rather than a
// value: it ends in _id, _arn (or -id, -arn, and their plurals _ids, _arns)
// in any case, or in camel-case Id, ID, Arn or ARN (or Ids, IDs, Arns, ARNs)
// after a lowercase letter or digit. secret_arn, tokenId and accessKeyId
// are identifiers; SECRETID and paid are not.
func IsIdentifierName(name string) bool {
	lower := strings.ToLower(name)
	for _, suf := range []string{"_id", "-id", "_ids", "-ids", "_arn", "-arn", "_arns", "-arns"} {
		if strings.HasSuffix(lower, suf) {
			return true
		}
	}
	for _, suf := range []string{"Id", "ID", "Ids", "IDs", "Arn", "ARN", "Arns", "ARNs"} {
		if len(name) > len(suf) && strings.HasSuffix(name, suf) {
			c := name[len(name)-len(suf)-1]
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
				return true
			}
		}
	}
	return false
}

// IsSensitiveName reports whether a field or map key called name holds a
// secret, by the rules Redact applies: the name, lowercased and with '_',
// '-', '.' and ' ' removed, contains secret, token, password, passwd,
// credential, privatekey, apikey, accesskeysecret, sessiontoken or
// authorization, and it is not an identifier (see IsIdentifierName).
//
// Two refinements keep useful non-secrets in the log: the names nextToken
// and clientToken (pagination and idempotency tokens, which CloudTrail logs
// too) are not sensitive, and the word "tokenizer" (a model's tokenizer) is
// not read as "token".
func IsSensitiveName(name string) bool {
	n := normalizeName(name)
	if nonSecretNames[n] || IsIdentifierName(name) {
		return false
	}
	n = strings.ReplaceAll(n, "tokenizer", "")
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// isCountName reports whether name is sensitive only through the word
// "token", like max_tokens or output_tokens_mean: a number under such a
// name counts tokens and is kept, while a number under password or
// secret_token is hidden.
func isCountName(name string) bool {
	if !IsSensitiveName(name) {
		return false
	}
	n := strings.ReplaceAll(strings.ReplaceAll(normalizeName(name), "tokenizer", ""), "token", "")
	for _, w := range sensitiveWords {
		if w != "token" && w != "sessiontoken" && strings.Contains(n, w) {
			return false
		}
	}
	return true
}

// secretRefRE matches references to secrets, which are identifiers and
// kept: Secrets Manager, SSM and KMS ARNs and perfleet:secret/<name>.
var secretRefRE = regexp.MustCompile(`^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):[a-z0-9-]*:[0-9]{12}:[^\s]+|perfleet:secret/[^\s]+)$`)

// isSecretRef reports whether s is a reference to a secret, not a secret.
func isSecretRef(s string) bool { return secretRefRE.MatchString(s) }

// Redact marshals m with protojson (lowerCamelCase JSON names) and hides
// every secret in it behind Hidden. It returns nil for a nil message.
//
// A value is hidden when:
//
//   - its field's name or its map entry's key is sensitive (see
//     IsSensitiveName), at any depth, including the keys of
//     google.protobuf.Struct values and of messages inside
//     google.protobuf.Any;
//   - it lies anywhere inside such a field (a sensitive message, list or
//     map is hidden leaf by leaf), except under identifier names (see
//     IsIdentifierName), so credentials.accessKeyId survives while
//     credentials.secretAccessKey does not;
//   - it is the value of a key/value pair, an object with a "key" or "name"
//     member whose value is a sensitive name, such as Tag{key: "hf_token"}
//     or an environment variable {name: "API_KEY", value: …};
//   - it follows a sensitive flag in a list of strings (command-line
//     arguments): "--api-key=V", "--hf-token V" and "HF_TOKEN=V" hide V,
//     unless V is all digits;
//   - it is inside a string that holds a JSON or YAML document (such as a
//     workload spec), by the same rules; such a string is re-encoded only
//     when something in it was hidden.
//
// String and bytes fields are hidden; numeric, bool and enum fields of the
// message are never secrets and are kept (time_to_first_token_p50 stays).
// Inside untyped data (Struct, embedded documents) numbers under sensitive
// keys are hidden too, except under names that are sensitive only through
// "token" (max_tokens, output_tokens_mean), which count tokens. Empty strings and secret references (Secrets
// Manager, SSM or KMS ARNs and perfleet:secret/<name>) are kept, as they
// reveal nothing.
//
// When m cannot be marshalled, Redact returns the JSON string Hidden in
// place of the whole message.
func Redact(m proto.Message) json.RawMessage {
	if m == nil {
		return nil
	}
	rm := m.ProtoReflect()
	if !rm.IsValid() {
		return nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return hiddenJSON
	}
	v, err := decodeJSON(b)
	if err != nil {
		return hiddenJSON
	}
	var r redactor
	v, _ = r.message(rm.Descriptor(), v, false)
	out, err := encodeJSON(v)
	if err != nil {
		return hiddenJSON
	}
	return out
}

// RedactJSON hides the secrets in an arbitrary JSON document with the
// rules of Redact for untyped data: string and number values under
// sensitive keys, key/value pairs, argument lists and embedded documents.
// The result is compact JSON with object keys sorted. Empty input yields
// nil; input that is not a single valid JSON value yields the JSON string
// Hidden, since it cannot be redacted field by field.
func RedactJSON(raw []byte) []byte {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return hiddenJSON
	}
	var r redactor
	v, _ = r.value(v, false)
	out, err := encodeJSON(v)
	if err != nil {
		return hiddenJSON
	}
	return out
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// encodeJSON writes v as compact JSON without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// maxEmbedDepth bounds how deep documents inside strings are searched.
const maxEmbedDepth = 2

// maxEmbedBytes is the longest string searched for an embedded document.
const maxEmbedBytes = 4 << 20

// redactor walks decoded JSON (maps, slices, strings, json.Number, bool,
// nil), replacing secrets in place. Each walk function returns the
// (possibly replaced) value and whether anything changed.
type redactor struct {
	embedDepth int
}

// childSensitive reports whether the value under key k is hidden, given
// whether its parent is (s).
func childSensitive(k string, s bool) bool {
	if s {
		return !IsIdentifierName(k)
	}
	return IsSensitiveName(k)
}

// pairSensitive reports whether obj is a key/value pair whose key (its
// "key" or "name" member) is a sensitive name.
func pairSensitive(obj map[string]any) bool {
	for _, k := range []string{"key", "Key", "name", "Name"} {
		if s, ok := obj[k].(string); ok && IsSensitiveName(s) {
			return true
		}
	}
	return false
}

// isValueKey reports whether k is the value member of a key/value pair.
func isValueKey(k string) bool { return k == "value" || k == "Value" }

// value walks untyped JSON.
func (r *redactor) value(v any, s bool) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		pair := pairSensitive(x)
		changed := false
		for k, cv := range x {
			cs := childSensitive(k, s) || pair && isValueKey(k)
			if _, num := cv.(json.Number); num && !s && isCountName(k) {
				cs = false
			}
			nv, c := r.value(cv, cs)
			if c {
				x[k] = nv
				changed = true
			}
		}
		return x, changed
	case []any:
		changed := false
		for i, e := range x {
			nv, c := r.value(e, s)
			if c {
				x[i] = nv
				changed = true
			}
		}
		if !s && redactArgs(x) {
			changed = true
		}
		return x, changed
	case string:
		return r.str(x, s)
	case json.Number:
		if s {
			return Hidden, true
		}
		return x, false
	default: // bool, nil
		return v, false
	}
}

// str handles a string value: hidden when sensitive (unless empty or a
// secret reference), otherwise searched for an embedded document.
func (r *redactor) str(x string, s bool) (any, bool) {
	if s {
		if x == "" || x == Hidden || isSecretRef(x) {
			return x, false
		}
		return Hidden, true
	}
	if out, ok := r.embedded(x); ok {
		return out, true
	}
	return x, false
}

// message walks the protojson form v of a message of type md.
func (r *redactor) message(md protoreflect.MessageDescriptor, v any, s bool) (any, bool) {
	switch md.FullName() {
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return r.value(v, s)
	case "google.protobuf.Any":
		return r.anyMessage(v, s)
	case "google.protobuf.StringValue":
		if x, ok := v.(string); ok {
			return r.str(x, s)
		}
		return v, false
	case "google.protobuf.BytesValue":
		return hideBytes(v, s)
	}
	if hasCustomJSON(md) { // Timestamp, Duration, FieldMask, numeric wrappers
		return v, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return r.value(v, s)
	}
	pair := pairSensitive(obj)
	fields := md.Fields()
	changed := false
	for k, cv := range obj {
		if k == "@type" {
			continue
		}
		cs := childSensitive(k, s) || pair && isValueKey(k)
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		var nv any
		var c bool
		if fd == nil { // an extension or unknown: no type to go by
			nv, c = r.value(cv, cs)
		} else {
			nv, c = r.field(fd, cv, cs)
		}
		if c {
			obj[k] = nv
			changed = true
		}
	}
	return obj, changed
}

// field walks the value of field fd.
func (r *redactor) field(fd protoreflect.FieldDescriptor, v any, s bool) (any, bool) {
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return r.value(v, s)
		}
		vfd := fd.MapValue()
		changed := false
		for k, ev := range obj {
			nv, c := r.singular(vfd, ev, childSensitive(k, s))
			if c {
				obj[k] = nv
				changed = true
			}
		}
		return obj, changed
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			return r.value(v, s)
		}
		changed := false
		for i, e := range arr {
			nv, c := r.singular(fd, e, s)
			if c {
				arr[i] = nv
				changed = true
			}
		}
		if !s && fd.Kind() == protoreflect.StringKind && redactArgs(arr) {
			changed = true
		}
		return arr, changed
	default:
		return r.singular(fd, v, s)
	}
}

// singular walks one value of field fd (an element, for lists and maps).
func (r *redactor) singular(fd protoreflect.FieldDescriptor, v any, s bool) (any, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if x, ok := v.(string); ok {
			return r.str(x, s)
		}
		return r.value(v, s)
	case protoreflect.BytesKind:
		return hideBytes(v, s)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return r.message(fd.Message(), v, s)
	default: // numbers, bools and enums are never secrets
		return v, false
	}
}

// hideBytes hides a non-empty base64 bytes value when sensitive.
func hideBytes(v any, s bool) (any, bool) {
	if x, ok := v.(string); ok && s && x != "" {
		return Hidden, true
	}
	return v, false
}

// anyMessage walks a google.protobuf.Any: {"@type": url, fields…}, or
// {"@type": url, "value": …} for well-known types.
func (r *redactor) anyMessage(v any, s bool) (any, bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		return r.value(v, s)
	}
	url, _ := obj["@type"].(string)
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		// Unknown type: walk it untyped, leaving @type alone.
		changed := false
		for k, cv := range obj {
			if k == "@type" {
				continue
			}
			nv, c := r.value(cv, childSensitive(k, s))
			if c {
				obj[k] = nv
				changed = true
			}
		}
		return obj, changed
	}
	md := mt.Descriptor()
	if hasCustomJSON(md) {
		nv, c := r.message(md, obj["value"], s)
		if c {
			obj["value"] = nv
		}
		return obj, c
	}
	return r.message(md, obj, s)
}

// hasCustomJSON reports whether md is a well-known type with a special
// protojson form.
func hasCustomJSON(md protoreflect.MessageDescriptor) bool {
	if md.ParentFile() == nil || md.ParentFile().Package() != "google.protobuf" {
		return false
	}
	switch md.Name() {
	case "Any", "Struct", "Value", "ListValue", "Timestamp", "Duration", "FieldMask",
		"DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value",
		"UInt32Value", "BoolValue", "StringValue", "BytesValue":
		return true
	}
	return false
}

// envNameRE matches the NAME of a NAME=value argument.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// argValueHidden reports whether an argument value after a sensitive flag
// is hidden.
func argValueHidden(v string) bool {
	return v != "" && v != Hidden && !allDigits(v) && !isSecretRef(v)
}

// redactArgs hides values in a list of command-line style arguments:
// "--api-key=V", "--hf-token V" and "HF_TOKEN=V". Non-string elements are
// skipped.
func redactArgs(arr []any) bool {
	changed := false
	hideNext := false
	for i, e := range arr {
		x, ok := e.(string)
		if !ok {
			hideNext = false
			continue
		}
		if hideNext {
			hideNext = false
			if !strings.HasPrefix(x, "-") {
				if argValueHidden(x) {
					arr[i] = Hidden
					changed = true
				}
				continue
			}
		}
		if out, next, ok := redactArg(x); ok {
			arr[i] = out
			changed = true
		} else if next {
			hideNext = true
		}
	}
	return changed
}

// redactArg handles one argument: it returns the redacted form and true
// when x carries a secret inline, or next=true when x is a sensitive flag
// whose value is the following argument.
func redactArg(x string) (out string, next, ok bool) {
	body := strings.TrimLeft(x, "-")
	dashes := len(x) - len(body)
	eq := strings.IndexByte(body, '=')
	if dashes == 0 {
		if eq > 0 && envNameRE.MatchString(body[:eq]) && IsSensitiveName(body[:eq]) && argValueHidden(body[eq+1:]) {
			return body[:eq+1] + Hidden, false, true
		}
		return "", false, false
	}
	if eq > 0 {
		if IsSensitiveName(body[:eq]) && argValueHidden(body[eq+1:]) {
			return x[:dashes+eq+1] + Hidden, false, true
		}
		return "", false, false
	}
	return "", body != "" && IsSensitiveName(body), false
}

// embedded looks for a JSON or YAML document in x and, when it hides
// something inside one, returns the re-encoded document.
func (r *redactor) embedded(x string) (string, bool) {
	if r.embedDepth >= maxEmbedDepth || len(x) > maxEmbedBytes || len(x) < 3 {
		return "", false
	}
	r.embedDepth++
	defer func() { r.embedDepth-- }()
	t := strings.TrimSpace(x)
	if t != "" && (t[0] == '{' || t[0] == '[') {
		if v, err := decodeJSON([]byte(t)); err == nil {
			nv, c := r.value(v, false)
			if !c {
				return "", false
			}
			out, err := encodeJSON(nv)
			if err != nil {
				return Hidden, true
			}
			return string(out), true
		}
	}
	if !hasYAMLMapping(x) {
		return "", false
	}
	return r.yamlDocs(x)
}

// hasYAMLMapping reports whether x has a ':' followed by whitespace or the
// end, the mark of a YAML mapping.
func hasYAMLMapping(x string) bool {
	for i := 0; i < len(x); i++ {
		if x[i] == ':' && (i+1 == len(x) || x[i+1] == ' ' || x[i+1] == '\t' || x[i+1] == '\n' || x[i+1] == '\r') {
			return true
		}
	}
	return false
}

// yamlDocs redacts every document of a YAML stream. When the stream does
// not parse, it falls back to hiding "key: value" and "key=value" lines
// with sensitive keys.
func (r *redactor) yamlDocs(x string) (out string, changed bool) {
	var docs []*yaml.Node
	parseErr := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New("yaml: panic")
			}
		}()
		dec := yaml.NewDecoder(strings.NewReader(x))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			docs = append(docs, &n)
		}
	}()
	if parseErr != nil {
		return redactLines(x)
	}
	seen := map[*yaml.Node]bool{}
	for _, d := range docs {
		if r.yamlNode(d, false, seen) {
			changed = true
		}
	}
	if !changed {
		return "", false
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return Hidden, true
		}
	}
	if err := enc.Close(); err != nil {
		return Hidden, true
	}
	return buf.String(), true
}

// yamlNode redacts a YAML node in place. seen guards alias cycles.
func (r *redactor) yamlNode(n *yaml.Node, s bool, seen map[*yaml.Node]bool) bool {
	changed := false
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			changed = r.yamlNode(c, s, seen) || changed
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			changed = r.yamlNode(c, s, seen) || changed
		}
		if !s {
			changed = yamlArgs(n.Content) || changed
		}
	case yaml.MappingNode:
		pair := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "key", "Key", "name", "Name":
				if v.Kind == yaml.ScalarNode && IsSensitiveName(v.Value) {
					pair = true
				}
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			cs := childSensitive(k.Value, s) || pair && isValueKey(k.Value)
			if tag := v.ShortTag(); v.Kind == yaml.ScalarNode && (tag == "!!int" || tag == "!!float") && !s && isCountName(k.Value) {
				cs = false
			}
			changed = r.yamlNode(v, cs, seen) || changed
		}
	case yaml.ScalarNode:
		if !s {
			if out, ok := r.embedded(n.Value); ok {
				n.Value, n.Style = out, yaml.LiteralStyle
				return true
			}
			return false
		}
		switch n.ShortTag() {
		case "!!bool", "!!null":
			return false
		}
		if n.Value == "" || n.Value == Hidden || isSecretRef(n.Value) {
			return false
		}
		n.Value, n.Tag, n.Style = Hidden, "!!str", 0
		return true
	case yaml.AliasNode:
		// A secret reached through an alias is hidden at its anchor.
		if s && n.Alias != nil && !seen[n.Alias] {
			seen[n.Alias] = true
			changed = r.yamlNode(n.Alias, true, seen)
		}
	}
	return changed
}

// yamlArgs applies redactArgs to the plain scalars of a YAML sequence.
func yamlArgs(items []*yaml.Node) bool {
	arr := make([]any, len(items))
	for i, it := range items {
		if it.Kind == yaml.ScalarNode && it.ShortTag() == "!!str" {
			arr[i] = it.Value
		}
	}
	if !redactArgs(arr) {
		return false
	}
	for i, it := range items {
		if x, ok := arr[i].(string); ok && x != it.Value {
			it.Value, it.Style = x, 0
		}
	}
	return true
}

// lineRE matches a "key: value" or "key=value" line, optionally a list
// item and with the key quoted.
var lineRE = regexp.MustCompile(`(?m)^([ \t]*(?:-[ \t]+)?["']?)([A-Za-z0-9_.\-]+)(["']?[ \t]*[:=][ \t]*)([^\r\n]*?)([ \t\r]*)$`)

// redactLines hides the values of sensitive "key: value" lines of a text
// that did not parse as YAML.
func redactLines(x string) (string, bool) {
	changed := false
	out := lineRE.ReplaceAllStringFunc(x, func(line string) string {
		m := lineRE.FindStringSubmatch(line)
		if m == nil || !IsSensitiveName(m[2]) {
			return line
		}
		v := strings.Trim(m[4], `"'`)
		if v == "" || isSecretRef(v) {
			return line
		}
		changed = true
		return m[1] + m[2] + m[3] + Hidden + m[5]
	})
	return out, changed
}
