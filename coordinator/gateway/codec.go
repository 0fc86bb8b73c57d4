package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// The JSON codec translates between SageMaker's awsJson1_1 documents and
// perfleet.v1 messages, member by member through the shapes table:
//   - timestamps are epoch seconds, fractional allowed (JSON numbers);
//   - unions are objects with one member;
//   - members a request may not have are a ValidationException, a body that
//     does not parse or has a wrong JSON type a SerializationException;
//   - zero values and empty lists are left out of responses, as the AWS
//     services do.

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// decodeRequest fills msg from a request body. An empty body is an empty
// request.
func decodeRequest(body []byte, msg proto.Message) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return serializationError("the request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return serializationError("the request body holds more than one JSON value")
	}
	return decodeMessage("", v, msg.ProtoReflect())
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func decodeMessage(path string, v any, m protoreflect.Message) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return serializationError("%s: expected a JSON object, got %s", pathOrBody(path), jsonType(v))
	}
	md := m.Descriptor()
	sh := shapeOf(md)
	if sh == nil {
		return internalError("no JSON shape for %s", md.FullName())
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mb, ok := sh.byName(k)
		if !ok {
			return validationError("%s: unknown member %q", pathOrBody(path), k)
		}
		val := obj[k]
		if val == nil {
			continue // null is absent
		}
		fd := md.Fields().ByName(mb.field)
		if fd == nil {
			return internalError("%s has no field %s", md.FullName(), mb.field)
		}
		if err := decodeField(joinPath(path, k), val, m, fd, mb); err != nil {
			return err
		}
	}
	return nil
}

func pathOrBody(path string) string {
	if path == "" {
		return "request"
	}
	return path
}

func decodeField(path string, v any, m protoreflect.Message, fd protoreflect.FieldDescriptor, mb member) error {
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return serializationError("%s: expected a JSON object, got %s", path, jsonType(v))
		}
		mp := m.Mutable(fd).Map()
		for k, ev := range obj {
			if ev == nil {
				continue
			}
			val, err := decodeScalar(path+"."+k, ev, fd.MapValue())
			if err != nil {
				return err
			}
			mp.Set(protoreflect.ValueOfString(k).MapKey(), val)
		}
		return nil
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			return serializationError("%s: expected a JSON array, got %s", path, jsonType(v))
		}
		list := m.Mutable(fd).List()
		for i, ev := range arr {
			ep := fmt.Sprintf("%s[%d]", path, i)
			if ev == nil {
				return serializationError("%s: null list element", ep)
			}
			if mb.wrap != "" {
				obj, ok := ev.(map[string]any)
				if !ok {
					return serializationError("%s: expected a JSON object, got %s", ep, jsonType(ev))
				}
				ev = obj[mb.wrap]
			}
			if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != timestampName {
				el := list.NewElement()
				if err := decodeMessage(ep, ev, el.Message()); err != nil {
					return err
				}
				list.Append(el)
				continue
			}
			val, err := decodeScalar(ep, ev, fd)
			if err != nil {
				return err
			}
			list.Append(val)
		}
		return nil
	case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != timestampName:
		return decodeMessage(path, v, m.Mutable(fd).Message())
	}
	val, err := decodeScalar(path, v, fd)
	if err != nil {
		return err
	}
	m.Set(fd, val)
	return nil
}

// decodeScalar decodes a JSON scalar into a field's (or list element's, or
// map value's) protobuf value; timestamps count as scalars.
func decodeScalar(path string, v any, fd protoreflect.FieldDescriptor) (protoreflect.Value, error) {
	wrong := func(want string) (protoreflect.Value, error) {
		return protoreflect.Value{}, serializationError("%s: expected %s, got %s", path, want, jsonType(v))
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		s, ok := v.(string)
		if !ok {
			return wrong("a string")
		}
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, ok := v.(bool)
		if !ok {
			return wrong("a boolean")
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := v.(json.Number)
		if !ok {
			return wrong("an integer")
		}
		bits := 64
		if k := fd.Kind(); k == protoreflect.Int32Kind || k == protoreflect.Sint32Kind || k == protoreflect.Sfixed32Kind {
			bits = 32
		}
		i, err := strconv.ParseInt(n.String(), 10, bits)
		if err != nil {
			return protoreflect.Value{}, serializationError("%s: %s is not a %d-bit integer", path, n, bits)
		}
		if bits == 32 {
			return protoreflect.ValueOfInt32(int32(i)), nil
		}
		return protoreflect.ValueOfInt64(i), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, ok := v.(json.Number)
		if !ok {
			return wrong("an integer")
		}
		bits := 64
		if k := fd.Kind(); k == protoreflect.Uint32Kind || k == protoreflect.Fixed32Kind {
			bits = 32
		}
		u, err := strconv.ParseUint(n.String(), 10, bits)
		if err != nil {
			return protoreflect.Value{}, serializationError("%s: %s is not an unsigned %d-bit integer", path, n, bits)
		}
		if bits == 32 {
			return protoreflect.ValueOfUint32(uint32(u)), nil
		}
		return protoreflect.ValueOfUint64(u), nil
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		n, ok := v.(json.Number)
		if !ok {
			return wrong("a number")
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return protoreflect.Value{}, serializationError("%s: %s is not a number", path, n)
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.MessageKind:
		if fd.Message().FullName() == timestampName {
			n, ok := v.(json.Number)
			if !ok {
				return wrong("a timestamp in epoch seconds")
			}
			t, err := parseEpochSeconds(n.String())
			if err != nil {
				return protoreflect.Value{}, serializationError("%s: %v", path, err)
			}
			return protoreflect.ValueOfMessage(timestamppb.New(t).ProtoReflect()), nil
		}
	}
	return protoreflect.Value{}, internalError("%s: unsupported field kind %s", path, fd.Kind())
}

// parseEpochSeconds parses epoch seconds with an optional fraction exactly
// (to the nanosecond); numbers in exponent form are rounded to the
// millisecond, as the AWS SDKs keep timestamps.
func parseEpochSeconds(s string) (time.Time, error) {
	if !strings.ContainsAny(s, "eE-") {
		whole, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s is not a timestamp in epoch seconds", s)
		}
		if len(frac) > 9 {
			frac = frac[:9]
		}
		var nanos int64
		if frac != "" {
			n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s is not a timestamp in epoch seconds", s)
			}
			nanos = n
		}
		return time.Unix(sec, nanos).UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e11 {
		return time.Time{}, fmt.Errorf("%s is not a timestamp in epoch seconds", s)
	}
	return time.UnixMilli(int64(math.Round(f * 1e3))).UTC(), nil
}

// formatEpochSeconds writes a timestamp as epoch seconds with millisecond
// precision, exactly in decimal: 1767225600, 1767225600.25.
func formatEpochSeconds(ts *timestamppb.Timestamp) string {
	ms := ts.AsTime().UnixMilli()
	if ms < 0 {
		return strconv.FormatFloat(float64(ms)/1e3, 'f', -1, 64)
	}
	s := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", frac), "0")
	}
	return s
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// encoder writes responses.
type encoder struct {
	buf bytes.Buffer
	// adapterIDs names the adapter of each adapter URI or model package
	// ARN of the job being described, so that AdapterDetails entries carry
	// their AdapterId as SageMaker's do.
	adapterIDs map[string]string
}

// encodeResponse writes a response message as the operation's JSON output.
func encodeResponse(msg proto.Message) ([]byte, error) {
	e := &encoder{}
	if d, ok := msg.(*pb.DescribeAIRecommendationJobResponse); ok {
		e.adapterIDs = map[string]string{}
		for _, a := range d.GetAdapterSource().GetS3Uris() {
			e.adapterIDs[a.GetS3Uri()] = a.GetAdapterId()
		}
		for _, a := range d.GetAdapterSource().GetModelPackageArns() {
			e.adapterIDs[a.GetModelPackageArn()] = a.GetAdapterId()
		}
	}
	if err := e.message(msg.ProtoReflect()); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// message writes one message as a JSON object.
func (e *encoder) message(m protoreflect.Message) error {
	md := m.Descriptor()
	sh := shapeOf(md)
	if sh == nil {
		return internalError("no JSON shape for %s", md.FullName())
	}
	e.buf.WriteByte('{')
	first := true
	key := func(name string) {
		if !first {
			e.buf.WriteByte(',')
		}
		first = false
		e.string(name)
		e.buf.WriteByte(':')
	}
	for _, mb := range sh.members {
		fd := md.Fields().ByName(mb.field)
		if fd == nil {
			continue // the message lost a field; shapes_test.go catches it
		}
		switch {
		case fd.IsMap():
			mp := m.Get(fd).Map()
			if mp.Len() == 0 {
				continue
			}
			key(mb.name)
			e.stringMap(mp)
		case fd.IsList():
			list := m.Get(fd).List()
			if list.Len() == 0 {
				continue
			}
			key(mb.name)
			if err := e.list(list, fd, mb); err != nil {
				return err
			}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == timestampName:
			if !m.Has(fd) {
				continue
			}
			key(mb.name)
			e.buf.WriteString(formatEpochSeconds(m.Get(fd).Message().Interface().(*timestamppb.Timestamp)))
		case fd.Kind() == protoreflect.MessageKind:
			if !m.Has(fd) {
				continue
			}
			sub := m.Get(fd).Message()
			if s := shapeOf(sub.Descriptor()); s != nil && s.union && isEmptyShape(sub) {
				continue // an empty union is no union at all
			}
			key(mb.name)
			if err := e.message(sub); err != nil {
				return err
			}
		default:
			if !m.Has(fd) && !mb.always {
				continue
			}
			key(mb.name)
			if err := e.scalar(m.Get(fd), fd); err != nil {
				return err
			}
		}
	}
	e.buf.WriteByte('}')
	return nil
}

// isEmptyShape reports whether a message has none of its shape's members
// set.
func isEmptyShape(m protoreflect.Message) bool {
	sh := shapeOf(m.Descriptor())
	for _, mb := range sh.members {
		fd := m.Descriptor().Fields().ByName(mb.field)
		if fd == nil {
			continue
		}
		switch {
		case fd.IsList():
			if m.Get(fd).List().Len() > 0 {
				return false
			}
		case fd.IsMap():
			if m.Get(fd).Map().Len() > 0 {
				return false
			}
		default:
			if m.Has(fd) {
				return false
			}
		}
	}
	return true
}

func (e *encoder) list(list protoreflect.List, fd protoreflect.FieldDescriptor, mb member) error {
	e.buf.WriteByte('[')
	for i := 0; i < list.Len(); i++ {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		v := list.Get(i)
		switch {
		case mb.wrap != "":
			s := v.String()
			e.buf.WriteByte('{')
			if id, ok := e.adapterIDs[s]; ok && id != "" {
				e.string("AdapterId")
				e.buf.WriteByte(':')
				e.string(id)
				e.buf.WriteByte(',')
			}
			e.string(mb.wrap)
			e.buf.WriteByte(':')
			e.string(s)
			e.buf.WriteByte('}')
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == timestampName:
			e.buf.WriteString(formatEpochSeconds(v.Message().Interface().(*timestamppb.Timestamp)))
		case fd.Kind() == protoreflect.MessageKind:
			if err := e.message(v.Message()); err != nil {
				return err
			}
		default:
			if err := e.scalar(v, fd); err != nil {
				return err
			}
		}
	}
	e.buf.WriteByte(']')
	return nil
}

func (e *encoder) stringMap(mp protoreflect.Map) {
	keys := make([]string, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k.String())
		return true
	})
	sort.Strings(keys)
	e.buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		e.string(k)
		e.buf.WriteByte(':')
		e.string(mp.Get(protoreflect.ValueOfString(k).MapKey()).String())
	}
	e.buf.WriteByte('}')
}

func (e *encoder) scalar(v protoreflect.Value, fd protoreflect.FieldDescriptor) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		e.string(v.String())
	case protoreflect.BoolKind:
		e.buf.WriteString(strconv.FormatBool(v.Bool()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		e.buf.WriteString(strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		e.buf.WriteString(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			e.buf.WriteString(`"NaN"`)
		case math.IsInf(f, 1):
			e.buf.WriteString(`"Infinity"`)
		case math.IsInf(f, -1):
			e.buf.WriteString(`"-Infinity"`)
		default:
			e.buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	default:
		return internalError("%s: unsupported field kind %s", fd.FullName(), fd.Kind())
	}
	return nil
}

func (e *encoder) string(s string) {
	b, _ := json.Marshal(s)
	e.buf.Write(b)
}

// awsPath turns a snake_case field path of a request message, as validation
// errors name it ("tags[3].key"), into the AWS member path ("Tags[3].Key").
// A path that does not resolve is returned unchanged.
func awsPath(md protoreflect.MessageDescriptor, path string) string {
	if md == nil || path == "" {
		return path
	}
	var out []string
	for _, seg := range strings.Split(path, ".") {
		if md == nil {
			return path
		}
		name, index, _ := strings.Cut(seg, "[")
		sh := shapeOf(md)
		if sh == nil {
			return path
		}
		mb, ok := sh.byField(protoreflect.Name(name))
		fd := md.Fields().ByName(protoreflect.Name(name))
		if !ok || fd == nil {
			return path
		}
		s := mb.name
		if index != "" {
			s += "[" + index
		}
		out = append(out, s)
		md = nil
		if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && fd.Message().FullName() != timestampName {
			md = fd.Message()
		}
	}
	return strings.Join(out, ".")
}
