package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// WireVersion is the version of the window encoding written by
// MarshalWindow. The encoding is protobuf (proto3 wire format, written by
// hand with protowire) so that it can travel in a proto `bytes` field and
// later be replaced by generated code for this schema:
//
//	message Window {            // version 1
//	  uint32  version       = 1;
//	  string  source        = 2;
//	  uint64  seq           = 3;
//	  sint64  start_ms      = 4;
//	  sint64  duration_ms   = 5;
//	  sint64  first_send_ns = 6;
//	  sint64  last_end_ns   = 7;
//	  repeated Hist    hists    = 8;
//	  repeated Counter counters = 9;
//	}
//	message Hist {
//	  string tag     = 1;
//	  double scale   = 2;
//	  uint64 count   = 3;
//	  double sum     = 4;
//	  double sum_sq  = 5;
//	  double min     = 6;
//	  double max     = 7;
//	  sint64 lowest  = 8;   // HDR geometry, must equal HistLowest/HistHighest/HistDigits
//	  sint64 highest = 9;
//	  uint32 digits  = 10;
//	  repeated uint64 bucket_index_delta = 11 [packed]; // non-zero buckets, delta-coded indexes
//	  repeated uint64 bucket_count       = 12 [packed];
//	}
//	message Counter { string name = 1; sint64 value = 2; }
const WireVersion = 1

// ErrWire is wrapped by every window decoding error.
var ErrWire = errors.New("invalid metric window encoding")

// MarshalWindow encodes a window. Histograms and counters are written in
// tag order, so equal windows encode to equal bytes.
func MarshalWindow(w *Window) []byte {
	b := make([]byte, 0, 256)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, WireVersion)
	if w.Source != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, w.Source)
	}
	b = appendVarintField(b, 3, w.Seq)
	b = appendSintField(b, 4, w.StartMs)
	b = appendSintField(b, 5, w.DurationMs)
	b = appendSintField(b, 6, w.FirstSendNs)
	b = appendSintField(b, 7, w.LastEndNs)
	tags := make([]string, 0, len(w.Hists))
	for t := range w.Hists {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, t := range tags {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, marshalHist(t, w.Hists[t]))
	}
	names := make([]string, 0, len(w.Counters))
	for n := range w.Counters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var c []byte
		c = protowire.AppendTag(c, 1, protowire.BytesType)
		c = protowire.AppendString(c, n)
		c = appendSintField(c, 2, w.Counters[n])
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendBytes(b, c)
	}
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendSintField(b []byte, num protowire.Number, v int64) []byte {
	return appendVarintField(b, num, protowire.EncodeZigZag(v))
}

func appendDoubleField(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func marshalHist(tag string, h *Histogram) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, tag)
	b = appendDoubleField(b, 2, h.Scale)
	b = appendVarintField(b, 3, uint64(h.Count))
	b = appendDoubleField(b, 4, h.Sum)
	b = appendDoubleField(b, 5, h.SumSq)
	b = appendDoubleField(b, 6, h.Min)
	b = appendDoubleField(b, 7, h.Max)
	b = appendSintField(b, 8, HistLowest)
	b = appendSintField(b, 9, HistHighest)
	b = appendVarintField(b, 10, HistDigits)
	var idx, cnt []byte
	prev := 0
	h.buckets(func(i int, c int64) {
		idx = protowire.AppendVarint(idx, uint64(i-prev))
		cnt = protowire.AppendVarint(cnt, uint64(c))
		prev = i
	})
	if len(idx) > 0 {
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendBytes(b, idx)
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendBytes(b, cnt)
	}
	return b
}

// fieldIter walks the fields of one message.
func fieldIter(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrWire, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrWire, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalWindow decodes and validates a window. Unknown fields are
// skipped so that newer senders stay readable.
func UnmarshalWindow(b []byte) (*Window, error) {
	w := NewWindow("", 0, 0, 0)
	var version uint64
	err := fieldIter(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			version = v
		case num == 2 && typ == protowire.BytesType:
			w.Source = string(bs)
		case num == 3 && typ == protowire.VarintType:
			w.Seq = v
		case num == 4 && typ == protowire.VarintType:
			w.StartMs = protowire.DecodeZigZag(v)
		case num == 5 && typ == protowire.VarintType:
			w.DurationMs = protowire.DecodeZigZag(v)
		case num == 6 && typ == protowire.VarintType:
			w.FirstSendNs = protowire.DecodeZigZag(v)
		case num == 7 && typ == protowire.VarintType:
			w.LastEndNs = protowire.DecodeZigZag(v)
		case num == 8 && typ == protowire.BytesType:
			tag, h, err := unmarshalHist(bs)
			if err != nil {
				return err
			}
			if _, dup := w.Hists[tag]; dup {
				return fmt.Errorf("%w: histogram %q repeated", ErrWire, tag)
			}
			w.Hists[tag] = h
		case num == 9 && typ == protowire.BytesType:
			var name string
			var val int64
			if err := fieldIter(bs, func(n protowire.Number, t protowire.Type, v uint64, s []byte) error {
				switch {
				case n == 1 && t == protowire.BytesType:
					name = string(s)
				case n == 2 && t == protowire.VarintType:
					val = protowire.DecodeZigZag(v)
				}
				return nil
			}); err != nil {
				return err
			}
			w.Counters[name] += val
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if version != WireVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrWire, version, WireVersion)
	}
	return w, nil
}

func unmarshalHist(b []byte) (string, *Histogram, error) {
	h := NewHistogram(1)
	var tag string
	var count uint64
	var lowest, highest int64
	var digits uint64
	var idxB, cntB []byte
	err := fieldIter(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		f := math.Float64frombits(v)
		switch {
		case num == 1 && typ == protowire.BytesType:
			tag = string(bs)
		case num == 2 && typ == protowire.Fixed64Type:
			h.Scale = f
		case num == 3 && typ == protowire.VarintType:
			count = v
		case num == 4 && typ == protowire.Fixed64Type:
			h.Sum = f
		case num == 5 && typ == protowire.Fixed64Type:
			h.SumSq = f
		case num == 6 && typ == protowire.Fixed64Type:
			h.Min = f
		case num == 7 && typ == protowire.Fixed64Type:
			h.Max = f
		case num == 8 && typ == protowire.VarintType:
			lowest = protowire.DecodeZigZag(v)
		case num == 9 && typ == protowire.VarintType:
			highest = protowire.DecodeZigZag(v)
		case num == 10 && typ == protowire.VarintType:
			digits = v
		case num == 11 && typ == protowire.BytesType:
			idxB = append(idxB, bs...)
		case num == 12 && typ == protowire.BytesType:
			cntB = append(cntB, bs...)
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	if lowest != HistLowest || highest != HistHighest || digits != HistDigits {
		return "", nil, fmt.Errorf("%w: histogram %q geometry %d..%d/%d", ErrWire, tag, lowest, highest, digits)
	}
	if !(h.Scale > 0) || math.IsInf(h.Scale, 0) || count > math.MaxInt64/2 {
		return "", nil, fmt.Errorf("%w: histogram %q scale %v count %d", ErrWire, tag, h.Scale, count)
	}
	h.Count = int64(count)
	var idx []int
	var counts []int64
	pos, total := 0, uint64(0)
	for len(idxB) > 0 {
		d, n := protowire.ConsumeVarint(idxB)
		if n < 0 {
			return "", nil, fmt.Errorf("%w: histogram %q bucket index", ErrWire, tag)
		}
		idxB = idxB[n:]
		c, m := protowire.ConsumeVarint(cntB)
		if m < 0 {
			return "", nil, fmt.Errorf("%w: histogram %q bucket counts shorter than indexes", ErrWire, tag)
		}
		cntB = cntB[m:]
		if d > uint64(histCountsLen) || pos+int(d) >= histCountsLen || c == 0 || c > count-total {
			return "", nil, fmt.Errorf("%w: histogram %q bucket out of range", ErrWire, tag)
		}
		pos += int(d)
		total += c
		idx = append(idx, pos)
		counts = append(counts, int64(c))
	}
	if len(cntB) != 0 || total != count {
		return "", nil, fmt.Errorf("%w: histogram %q bucket counts sum %d, count %d", ErrWire, tag, total, count)
	}
	if count == 0 {
		h.Min, h.Max = math.Inf(1), math.Inf(-1)
	}
	h.setBuckets(idx, counts)
	return tag, h, nil
}
