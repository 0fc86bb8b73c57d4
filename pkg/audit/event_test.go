package audit

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"
)

var uuidV4RE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewEventID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewEventID()
		if !uuidV4RE.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate ID %q", id)
		}
		seen[id] = true
	}
}

func sampleEvent() *Event {
	ev := NewEvent(time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600)))
	ev.EventSource = "sagemaker.amazonaws.com"
	ev.EventName = "CreateAIBenchmarkJob"
	ev.AWSRegion = "us-west-2"
	ev.RecipientAccountID = "123456789012"
	ev.UserIdentity = UserIdentity{
		Type: "IAMUser", PrincipalID: "AIDAEXAMPLE", ARN: "arn:aws:iam::123456789012:user/alice",
		AccountID: "123456789012", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
	}
	ev.SourceIPAddress = "10.0.0.1"
	ev.UserAgent = "perfleetctl/1.0"
	ev.RequestID = "req-1"
	ev.RequestParameters = json.RawMessage(`{"aiBenchmarkJobName":"j1"}`)
	ev.Resources = []Resource{{ARN: "arn:aws:sagemaker:us-west-2:123456789012:ai-benchmark-job/j1", AccountID: "123456789012", Type: "AWS::SageMaker::AIBenchmarkJob"}}
	ev.ErrorCode = "ValidationException"
	ev.ErrorMessage = "bad"
	ev.Authorization = &Authorization{Decision: "Allow", Action: "sagemaker:CreateAIBenchmarkJob", Policy: "team", StatementID: "S1"}
	return ev
}

func TestEventJSONNames(t *testing.T) {
	ev := sampleEvent()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"eventVersion": "1.09", "eventID": ev.EventID, "eventTime": "2026-03-04T04:06:07Z",
		"eventSource": "sagemaker.amazonaws.com", "eventName": "CreateAIBenchmarkJob",
		"awsRegion": "us-west-2", "recipientAccountId": "123456789012", "readOnly": false,
		"sourceIPAddress": "10.0.0.1", "userAgent": "perfleetctl/1.0", "requestID": "req-1",
		"responseElements": nil, "errorCode": "ValidationException", "errorMessage": "bad",
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, v)
		}
	}
	ui := m["userIdentity"].(map[string]any)
	for _, k := range []string{"type", "principalId", "arn", "accountId", "accessKeyId"} {
		if _, ok := ui[k]; !ok {
			t.Errorf("userIdentity.%s missing: %s", k, b)
		}
	}
	res := m["resources"].([]any)[0].(map[string]any)
	for _, k := range []string{"ARN", "accountId", "type"} {
		if _, ok := res[k]; !ok {
			t.Errorf("resources[0].%s missing: %s", k, b)
		}
	}
	if m["requestParameters"].(map[string]any)["aiBenchmarkJobName"] != "j1" {
		t.Errorf("requestParameters: %s", b)
	}
	if m["perfleetAuthorization"].(map[string]any)["decision"] != "Allow" {
		t.Errorf("perfleetAuthorization: %s", b)
	}

	// Round trip (eventTime to the second, as CloudTrail writes it).
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	ev.EventTime = ev.EventTime.Truncate(time.Second)
	if !reflect.DeepEqual(&back, ev) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *ev)
	}
}

func TestEventEmptyRawMessages(t *testing.T) {
	ev := Event{RequestParameters: json.RawMessage{}}
	b, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["requestParameters"]; !ok || v != nil {
		t.Errorf("requestParameters = %v, %v; want null", v, ok)
	}
	if err := json.Unmarshal([]byte(`{"eventTime":"yesterday"}`), &ev); err == nil {
		t.Error("bad eventTime accepted")
	}
}
