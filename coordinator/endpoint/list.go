package endpoint

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	"github.com/perfleet/perfleet/pkg/validate"
)

// Default and maximum page sizes of List operations.
const (
	defaultMaxResults = 10
	maxMaxResults     = 100
)

// listQuery is the filter, sort and paging part of a List request.
type listQuery struct {
	nameContains  string
	statusEquals  string
	after, before *timestamppb.Timestamp
	sortBy        string
	sortOrder     string
	maxResults    int32
	nextToken     string
	allowStatus   bool   // jobs can be filtered and sorted by status
	kind          string // the resource type listed; tokens are bound to it
}

// listRow is one resource as a List sees it.
type listRow struct {
	name    string
	created int64 // Unix nanoseconds
	status  string
	item    any
}

// validate checks the query and fills in defaults.
func (q *listQuery) validate() error {
	var c validate.Checker
	c.Check("name_contains", names.NameContains(q.nameContains))
	if q.statusEquals != "" && !validStatus(q.statusEquals) {
		c.Addf("status_equals", "must be one of InProgress, Completed, Failed, Stopping, Stopped; got %q", q.statusEquals)
	}
	sorts := []string{"Name", "CreationTime"}
	if q.allowStatus {
		sorts = append(sorts, "Status")
	}
	if q.sortBy == "" {
		q.sortBy = "CreationTime"
	} else if !contains(sorts, q.sortBy) {
		c.Addf("sort_by", "must be one of %s; got %q", strings.Join(sorts, ", "), q.sortBy)
	}
	if q.sortOrder == "" {
		q.sortOrder = "Descending"
	} else if q.sortOrder != "Ascending" && q.sortOrder != "Descending" {
		c.Addf("sort_order", "must be Ascending or Descending; got %q", q.sortOrder)
	}
	if q.maxResults == 0 {
		q.maxResults = defaultMaxResults
	} else if q.maxResults < 1 || q.maxResults > maxMaxResults {
		c.Addf("max_results", "must be between 1 and %d; got %d", maxMaxResults, q.maxResults)
	}
	if q.after != nil && q.before != nil && !q.after.AsTime().Before(q.before.AsTime()) {
		c.Add("creation_time_after", "must be earlier than creation_time_before")
	}
	return c.Err()
}

func validStatus(s string) bool {
	return contains([]string{state.StatusInProgress, state.StatusCompleted, state.StatusFailed, state.StatusStopping, state.StatusStopped}, s)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fingerprint identifies the filters and order a token was issued for.
func (q *listQuery) fingerprint(account string) string {
	var a, b int64
	if q.after != nil {
		a = q.after.AsTime().UnixNano()
	}
	if q.before != nil {
		b = q.before.AsTime().UnixNano()
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%s|%d|%d|%s|%s", q.kind, account, q.nameContains, q.statusEquals, a, b, q.sortBy, q.sortOrder)))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func (q *listQuery) sortKey(r listRow) string {
	switch q.sortBy {
	case "Name":
		return r.name
	case "Status":
		return r.status
	}
	return fmt.Sprintf("%020d", r.created)
}

// cursor is the decoded content of a next token.
type cursor struct {
	Query string `json:"q"`
	Key   string `json:"k"`
	Name  string `json:"n"`
}

// page filters, sorts and pages rows. Rows are ordered by (sort key, name),
// so a page boundary is exact even when sort keys repeat, and a token stays
// valid while resources are added or removed.
func (q *listQuery) page(account string, rows []listRow, key []byte) ([]listRow, string, error) {
	kept := rows[:0:0]
	for _, r := range rows {
		if q.nameContains != "" && !strings.Contains(r.name, q.nameContains) {
			continue
		}
		if q.statusEquals != "" && r.status != q.statusEquals {
			continue
		}
		if q.after != nil && r.created <= q.after.AsTime().UnixNano() {
			continue
		}
		if q.before != nil && r.created >= q.before.AsTime().UnixNano() {
			continue
		}
		kept = append(kept, r)
	}
	desc := q.sortOrder == "Descending"
	less := func(a, b listRow) bool {
		ka, kb := q.sortKey(a), q.sortKey(b)
		if ka != kb {
			return (ka < kb) != desc
		}
		return (a.name < b.name) != desc
	}
	sort.Slice(kept, func(i, j int) bool { return less(kept[i], kept[j]) })

	fp := q.fingerprint(account)
	start := 0
	if q.nextToken != "" {
		c, err := openToken(q.nextToken, key)
		if err != nil {
			return nil, "", err
		}
		if c.Query != fp {
			return nil, "", validate.Field("next_token", "was issued for another List operation or different filters or sort order; repeat the original request's filters")
		}
		// start is the first row strictly after the cursor in page order.
		start = sort.Search(len(kept), func(i int) bool {
			k := q.sortKey(kept[i])
			if k != c.Key {
				return (k > c.Key) != desc
			}
			if desc {
				return kept[i].name < c.Name
			}
			return kept[i].name > c.Name
		})
	}
	end := start + int(q.maxResults)
	if end >= len(kept) {
		return kept[start:], "", nil
	}
	last := kept[end-1]
	tok, err := sealToken(cursor{Query: fp, Key: q.sortKey(last), Name: last.name}, key)
	if err != nil {
		return nil, "", err
	}
	return kept[start:end], tok, nil
}

func sealToken(c cursor, key []byte) (string, error) {
	if len(key) == 0 {
		return "", fmt.Errorf("%w: the cluster is still initialising its page token key; retry", ErrUnavailable)
	}
	payload, _ := json.Marshal(c)
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16]), nil
}

func openToken(tok string, key []byte) (cursor, error) {
	bad := validate.Field("next_token", "is not a token this cluster issued (it is malformed or was altered)")
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || len(key) == 0 {
		return cursor{}, bad
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	h := hmac.New(sha256.New, key)
	h.Write(payload)
	if !hmac.Equal(h.Sum(nil)[:16], mac) {
		return cursor{}, bad
	}
	var c cursor
	if err := json.Unmarshal(payload, &c); err != nil {
		return cursor{}, bad
	}
	return c, nil
}
