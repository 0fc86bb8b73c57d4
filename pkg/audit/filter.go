package audit

import "time"

// Filter selects events for a lookup, like CloudTrail's LookupEvents
// attributes. Zero-valued fields match everything; set fields must all
// match. Paging is the caller's concern.
type Filter struct {
	// StartTime, when set, drops events before it (inclusive bound).
	StartTime time.Time
	// EndTime, when set, drops events after it (inclusive bound).
	EndTime time.Time
	// EventName, when set, must equal Event.EventName.
	EventName string
	// PrincipalARN, when set, must equal Event.UserIdentity.ARN.
	PrincipalARN string
	// ResourceARN, when set, must equal the ARN of one of Event.Resources.
	ResourceARN string
	// AccountID, when set, must equal Event.RecipientAccountID, the account
	// the event belongs to.
	AccountID string
	// ReadOnly, when set, must equal Event.ReadOnly.
	ReadOnly *bool
}

// Match reports whether ev passes the filter. A nil ev never matches.
func (f Filter) Match(ev *Event) bool {
	switch {
	case ev == nil:
		return false
	case !f.StartTime.IsZero() && ev.EventTime.Before(f.StartTime):
		return false
	case !f.EndTime.IsZero() && ev.EventTime.After(f.EndTime):
		return false
	case f.EventName != "" && ev.EventName != f.EventName:
		return false
	case f.PrincipalARN != "" && ev.UserIdentity.ARN != f.PrincipalARN:
		return false
	case f.AccountID != "" && ev.RecipientAccountID != f.AccountID:
		return false
	case f.ReadOnly != nil && ev.ReadOnly != *f.ReadOnly:
		return false
	}
	if f.ResourceARN != "" {
		for _, r := range ev.Resources {
			if r.ARN == f.ResourceARN {
				return true
			}
		}
		return false
	}
	return true
}
