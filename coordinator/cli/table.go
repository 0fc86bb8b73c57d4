package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }
func (t *table) flush()             { t.tw.Flush() }

// kv writes "Key:  value" lines for Describe output, skipping empty values.
func kv(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var tail []string // multi-line values go after the aligned block
	for i := 0; i+1 < len(pairs); i += 2 {
		switch v := pairs[i+1]; {
		case v == "":
		case strings.Contains(v, "\n"):
			tail = append(tail, pairs[i]+":\n  "+strings.ReplaceAll(strings.TrimRight(v, "\n"), "\n", "\n  "))
		default:
			fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], v)
		}
	}
	tw.Flush()
	for _, t := range tail {
		fmt.Fprintln(w, t)
	}
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format("2006-01-02T15:04:05Z")
}

func tagString(tags []*pb.Tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.GetKey() + "=" + t.GetValue()
	}
	return strings.Join(parts, ", ")
}

// parseTags turns k=v flags into tags.
func parseTags(list []string) ([]*pb.Tag, error) {
	var out []*pb.Tag
	for _, s := range list {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("--tag %q must be key=value", s)}
		}
		out = append(out, &pb.Tag{Key: k, Value: v})
	}
	return out, nil
}

// readSpec reads a workload spec file, or stdin for "-".
func readSpec(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", usageError{fmt.Errorf("--spec: %v", err)}
	}
	return string(b), nil
}
