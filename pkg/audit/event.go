// Package audit records perfleet API calls as CloudTrail-style audit events.
//
// An Event carries CloudTrail's record fields under CloudTrail's JSON names
// (eventVersion, eventID, eventTime, userIdentity, requestParameters, …), so
// tools that read CloudTrail logs read perfleet's too. Request and response
// bodies go through Redact (protobuf messages) or RedactJSON (arbitrary JSON)
// before they are stored, which hides secret values behind CloudTrail's
// marker HIDDEN_DUE_TO_SECURITY_REASONS.
//
// An Exporter appends events as JSON lines to local files, rotates them by
// size, optionally compresses them, hands them to an Uploader (S3Uploader
// stores them through pkg/resultstore) and prunes old local files. A Filter
// selects events for a lookup, like CloudTrail's LookupEvents attributes.
package audit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// EventVersion is the CloudTrail record format version written by NewEvent.
const EventVersion = "1.09"

// Values NewEvent puts in the CloudTrail classification fields.
const (
	// EventTypeAPICall is CloudTrail's eventType for an API call.
	EventTypeAPICall = "AwsApiCall"
	// EventCategoryManagement is CloudTrail's eventCategory for control-plane calls.
	EventCategoryManagement = "Management"
)

// Event is one audit record, CloudTrail's record format. The JSON names are
// CloudTrail's; eventTime is written as RFC 3339 in UTC with whole seconds
// (CloudTrail's precision), so a marshalled event loses sub-second detail.
//
// One field is not in CloudTrail's format: perfleetAuthorization, the
// authorization decision (see Authorization), omitted when nil.
type Event struct {
	// EventVersion is the record format version, EventVersion ("1.09").
	EventVersion string
	// UserIdentity is the caller.
	UserIdentity UserIdentity
	// EventTime is when the request was received.
	EventTime time.Time
	// EventSource is the service that got the request, e.g.
	// "sagemaker.amazonaws.com" or "perfleet.amazonaws.com".
	EventSource string
	// EventName is the API operation, e.g. "CreateAIBenchmarkJob".
	EventName string
	// AWSRegion is the region the request was sent to.
	AWSRegion string
	// SourceIPAddress is the caller's IP address.
	SourceIPAddress string
	// UserAgent is the caller's user agent.
	UserAgent string
	// RequestParameters is the redacted request (see Redact); nil is
	// written as null, as CloudTrail does.
	RequestParameters json.RawMessage
	// ResponseElements is the redacted response; nil is written as null
	// (read-only calls and failed calls usually have none).
	ResponseElements json.RawMessage
	// AdditionalEventData holds extra service-specific data (optional).
	AdditionalEventData json.RawMessage
	// RequestID is the request's ID, as returned to the caller.
	RequestID string
	// EventID is the record's unique ID, a version 4 UUID.
	EventID string
	// ReadOnly reports whether the operation only reads.
	ReadOnly bool
	// Resources are the resources the request acted on.
	Resources []Resource
	// EventType is CloudTrail's eventType, EventTypeAPICall for API calls.
	EventType string
	// ManagementEvent reports a management (control-plane) event.
	ManagementEvent bool
	// EventCategory is CloudTrail's eventCategory, e.g. "Management".
	EventCategory string
	// RecipientAccountID is the account the event belongs to (the owner of
	// the resources); CloudTrail's recipientAccountId.
	RecipientAccountID string
	// ErrorCode is the error's code for a failed call, e.g.
	// "ValidationException"; empty on success.
	ErrorCode string
	// ErrorMessage is the failed call's error message; empty on success.
	ErrorMessage string
	// Authorization is the authorization decision for the call, a perfleet
	// extension written as "perfleetAuthorization"; nil omits it.
	Authorization *Authorization
}

// UserIdentity is CloudTrail's userIdentity element.
type UserIdentity struct {
	// Type is the identity type, e.g. "IAMUser", "AssumedRole", "Root".
	Type string `json:"type,omitempty"`
	// PrincipalID is the principal's unique ID.
	PrincipalID string `json:"principalId,omitempty"`
	// ARN is the principal's ARN.
	ARN string `json:"arn,omitempty"`
	// AccountID is the account that owns the principal.
	AccountID string `json:"accountId,omitempty"`
	// AccessKeyID is the access key that signed the request (an
	// identifier, never the secret key).
	AccessKeyID string `json:"accessKeyId,omitempty"`
}

// Resource is one element of CloudTrail's resources list.
type Resource struct {
	// ARN is the resource's ARN (CloudTrail spells the JSON name "ARN").
	ARN string `json:"ARN,omitempty"`
	// AccountID is the account that owns the resource.
	AccountID string `json:"accountId,omitempty"`
	// Type is the resource type, e.g. "AWS::SageMaker::AIBenchmarkJob".
	Type string `json:"type,omitempty"`
}

// Authorization records how perfleet authorized a call. It is written under
// the non-CloudTrail name "perfleetAuthorization".
type Authorization struct {
	// Decision is the outcome: "Allow", "ExplicitDeny" or "ImplicitDeny".
	Decision string `json:"decision"`
	// Action is the action that was evaluated, e.g.
	// "sagemaker:CreateAIBenchmarkJob".
	Action string `json:"action,omitempty"`
	// Policy is the name of the policy whose statement decided; empty for
	// an implicit deny.
	Policy string `json:"policy,omitempty"`
	// StatementID is the deciding statement's Sid, if it has one.
	StatementID string `json:"statementId,omitempty"`
}

// NewEvent returns an Event for an API call received at now, with
// EventVersion, a fresh EventID, EventTime (now in UTC), EventType
// (AwsApiCall), ManagementEvent (true) and EventCategory (Management) set.
// The caller fills in the rest.
func NewEvent(now time.Time) *Event {
	return &Event{
		EventVersion:    EventVersion,
		EventID:         NewEventID(),
		EventTime:       now.UTC(),
		EventType:       EventTypeAPICall,
		ManagementEvent: true,
		EventCategory:   EventCategoryManagement,
	}
}

// NewEventID returns a random (version 4) UUID in its canonical
// 8-4-4-4-12 lowercase hex form.
func NewEventID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read does not fail on supported platforms.
		panic(fmt.Sprintf("audit: crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// wireEvent is Event's JSON form, in CloudTrail's field order.
type wireEvent struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	EventTime           string          `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress,omitempty"`
	UserAgent           string          `json:"userAgent,omitempty"`
	ErrorCode           string          `json:"errorCode,omitempty"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	RequestID           string          `json:"requestID,omitempty"`
	EventID             string          `json:"eventID"`
	ReadOnly            bool            `json:"readOnly"`
	Resources           []Resource      `json:"resources,omitempty"`
	EventType           string          `json:"eventType,omitempty"`
	ManagementEvent     bool            `json:"managementEvent"`
	RecipientAccountID  string          `json:"recipientAccountId,omitempty"`
	EventCategory       string          `json:"eventCategory,omitempty"`
	Authorization       *Authorization  `json:"perfleetAuthorization,omitempty"`
}

// nilIfEmpty turns an empty RawMessage into nil, which marshals as null
// (an empty one is not valid JSON).
func nilIfEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	return m
}

// MarshalJSON writes the event as a CloudTrail record.
func (e Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{
		EventVersion:        e.EventVersion,
		UserIdentity:        e.UserIdentity,
		EventSource:         e.EventSource,
		EventName:           e.EventName,
		AWSRegion:           e.AWSRegion,
		SourceIPAddress:     e.SourceIPAddress,
		UserAgent:           e.UserAgent,
		ErrorCode:           e.ErrorCode,
		ErrorMessage:        e.ErrorMessage,
		RequestParameters:   nilIfEmpty(e.RequestParameters),
		ResponseElements:    nilIfEmpty(e.ResponseElements),
		AdditionalEventData: nilIfEmpty(e.AdditionalEventData),
		RequestID:           e.RequestID,
		EventID:             e.EventID,
		ReadOnly:            e.ReadOnly,
		Resources:           e.Resources,
		EventType:           e.EventType,
		ManagementEvent:     e.ManagementEvent,
		RecipientAccountID:  e.RecipientAccountID,
		EventCategory:       e.EventCategory,
		Authorization:       e.Authorization,
	}
	if !e.EventTime.IsZero() {
		w.EventTime = e.EventTime.UTC().Format(time.RFC3339)
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a CloudTrail record. eventTime may carry fractional
// seconds or an offset; it is stored in UTC. A JSON null in
// requestParameters or responseElements leaves the field nil.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var t time.Time
	if w.EventTime != "" {
		var err error
		t, err = time.Parse(time.RFC3339Nano, w.EventTime)
		if err != nil {
			return fmt.Errorf("audit: eventTime: %w", err)
		}
		t = t.UTC()
	}
	null := func(m json.RawMessage) json.RawMessage {
		if string(m) == "null" {
			return nil
		}
		return m
	}
	*e = Event{
		EventVersion:        w.EventVersion,
		UserIdentity:        w.UserIdentity,
		EventTime:           t,
		EventSource:         w.EventSource,
		EventName:           w.EventName,
		AWSRegion:           w.AWSRegion,
		SourceIPAddress:     w.SourceIPAddress,
		UserAgent:           w.UserAgent,
		RequestParameters:   null(w.RequestParameters),
		ResponseElements:    null(w.ResponseElements),
		AdditionalEventData: null(w.AdditionalEventData),
		RequestID:           w.RequestID,
		EventID:             w.EventID,
		ReadOnly:            w.ReadOnly,
		Resources:           w.Resources,
		EventType:           w.EventType,
		ManagementEvent:     w.ManagementEvent,
		EventCategory:       w.EventCategory,
		RecipientAccountID:  w.RecipientAccountID,
		ErrorCode:           w.ErrorCode,
		ErrorMessage:        w.ErrorMessage,
		Authorization:       w.Authorization,
	}
	return nil
}
