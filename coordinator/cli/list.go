package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// listFlags are the filter, sort and paging flags of list commands.
type listFlags struct {
	nameContains, status, sortBy, sortOrder string
	after, before                           string
	limit                                   int
	nextToken                               string
}

func (l *listFlags) register(cmd *cobra.Command, jobs bool) {
	f := cmd.Flags()
	f.StringVar(&l.nameContains, "name-contains", "", "only names containing this text")
	sorts := "Name or CreationTime"
	if jobs {
		f.StringVar(&l.status, "status", "", "only jobs in this status: InProgress, Completed, Failed, Stopping, Stopped")
		sorts = "Name, CreationTime or Status"
	}
	f.StringVar(&l.after, "created-after", "", "only resources created after this RFC 3339 time")
	f.StringVar(&l.before, "created-before", "", "only resources created before this RFC 3339 time")
	f.StringVar(&l.sortBy, "sort-by", "", "sort by "+sorts+" (default CreationTime)")
	f.StringVar(&l.sortOrder, "sort-order", "", "Ascending or Descending (default Descending)")
	f.IntVar(&l.limit, "limit", 100, "show at most this many rows (0: all)")
	f.StringVar(&l.nextToken, "next-token", "", "continue a previous listing")
}

func (l *listFlags) times(after, before **timestamppb.Timestamp) error {
	for _, p := range []struct {
		s    string
		flag string
		dst  **timestamppb.Timestamp
	}{{l.after, "--created-after", after}, {l.before, "--created-before", before}} {
		if p.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, p.s)
		if err != nil {
			return usageError{fmt.Errorf("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z", p.flag, p.s)}
		}
		*p.dst = timestamppb.New(t)
	}
	return nil
}

// pages calls fetch with page sizes until the listing ends or the limit is
// reached; fetch returns the next token.
func (l *listFlags) pages(fetch func(size int32, token string) (string, error)) error {
	token, got := l.nextToken, 0
	for {
		size := int32(100)
		if l.limit > 0 && l.limit-got < 100 {
			size = int32(l.limit - got)
		}
		next, err := fetch(size, token)
		if err != nil {
			return err
		}
		got += int(size)
		token = next
		if token == "" || (l.limit > 0 && got >= l.limit) {
			return nil
		}
	}
}

// more tells the user how to continue a listing cut by --limit.
func (l *listFlags) more(g *globals, token string) {
	if token != "" {
		fmt.Fprintf(g.errOut, "(more results: repeat with --next-token %s)\n", token)
	}
}

// printARN prints the response as JSON, or the given line.
func (g *globals) printARN(resp proto.Message, line string) error {
	if g.output == "json" {
		return g.printJSON(resp)
	}
	_, err := fmt.Fprintln(g.out, line)
	return err
}

// tokenOrNew returns the user's idempotency token, or a fresh one, so that
// the CLI's own retries after a failover never create twice.
func tokenOrNew(t string) string {
	if t != "" {
		return t
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}
