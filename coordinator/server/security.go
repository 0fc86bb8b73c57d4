package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/acl"
	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/gateway"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/audit"
	"github.com/perfleet/perfleet/pkg/auth"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/ratelimit"
	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// security is a node's authentication, authorization and audit.
type security struct {
	authn *acl.Authenticator
	authz *acl.Authorizer
	res   *acl.Resolver
	limit *ratelimit.Limiter

	mu        sync.Mutex
	pending   []*pb.AuditEvent // records waiting for the batch flush
	throttles map[throttleKey]*throttleSummary
	kick      chan struct{}
}

func (s *Server) newSecurity() *security {
	now := func() time.Time { return time.Now().UTC() }
	return &security{
		authn: &acl.Authenticator{State: s.State, DefaultAccount: s.cfg.DefaultAccount, Now: now},
		authz: &acl.Authorizer{State: s.State, Now: now, Region: s.cfg.Region},
		res:   &acl.Resolver{Scope: s.Scope(), State: s.State},
		kick:  make(chan struct{}, 1),
		limit: ratelimit.New(s.cfg.RateLimit, s.cfg.RateBurst),
	}
}

// Calls outside the ACL: health and reflection (no data), the agents'
// control stream (mutual TLS with an agent certificate), and the servers'
// own cluster calls.
func exemptFromACL(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.") || strings.HasPrefix(method, "/grpc.reflection.") ||
		strings.HasPrefix(method, "/perfleet.v1.AgentService/") || serverOnly(method)
}

func serverOnly(method string) bool {
	switch method {
	case pb.OperatorService_Join_FullMethodName, pb.OperatorService_ServerInfo_FullMethodName,
		pb.OperatorService_RecordAuditEvents_FullMethodName:
		return true
	}
	return false
}

// checkServerPeer refuses a server-only call from anything but a server:
// with TLS the peer must hold a server certificate; without, the internal
// key derived from the replicated cluster key (when there is one yet).
func (s *Server) checkServerPeer(ctx context.Context, method string) error {
	if !serverOnly(method) {
		return nil
	}
	if id, err := tlsutil.PeerIdentityFromContext(ctx); err == nil {
		if id.Role == tlsutil.RoleServer {
			return nil
		}
		return endpoint.ToStatus(acl.ErrAccessDenied)
	}
	if method != pb.OperatorService_RecordAuditEvents_FullMethodName {
		return nil // plaintext cluster formation: --insecure-loopback or dev
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(acl.HeaderInternal); len(v) > 0 && v[0] == acl.InternalKey(s.State().Meta().GetPageTokenKey()) {
		return nil
	}
	return endpoint.ToStatus(acl.ErrAccessDenied)
}

// aclUnary authenticates and authorizes a call where it runs (after
// routing), and writes its audit record.
func (s *Server) aclUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if exemptFromACL(info.FullMethod) {
		if err := s.checkServerPeer(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	start := time.Now()
	msg, _ := req.(proto.Message)
	id, t, err := s.authorize(ctx, info.FullMethod, msg)
	var resp any
	if err == nil {
		resp, err = handler(acl.WithIdentity(ctx, id), req)
	}
	s.record(ctx, info.FullMethod, start, id, t, msg, resp, err)
	return resp, err
}

// authorize returns the caller and the call's target, or why it may not.
func (s *Server) authorize(ctx context.Context, method string, msg proto.Message) (*acl.Identity, acl.Target, error) {
	id := acl.FromContext(ctx) // the gateway authenticates before the call
	var err error
	if id == nil {
		if id, err = s.sec.authn.Authenticate(ctx); err != nil {
			if method != pb.ACLService_Bootstrap_FullMethodName {
				return nil, acl.Target{}, err
			}
			// Anyone may try Bootstrap; the state refuses all but the first.
			id = &acl.Identity{Account: s.cfg.DefaultAccount, AuthBy: acl.ByNone, Type: "Unknown"}
		}
	}
	key := id.PrincipalARN
	if key == "" {
		key = "account:" + id.Account
	}
	if ok, wait := s.sec.limit.Allow(key, time.Now()); !ok {
		return id, acl.Target{}, fmt.Errorf("%w: Rate exceeded for %s; retry in %s (rate_limit %g/s, burst %d)",
			acl.ErrThrottled, key, wait.Round(time.Millisecond), s.cfg.RateLimit, max(s.cfg.RateBurst, 1))
	}
	t, err := s.sec.res.Target(method, msg, id)
	if err != nil {
		return id, t, err
	}
	return id, t, s.sec.authz.Authorize(id, t)
}

// aclStream does what aclUnary does for server-streaming calls (Watch): the
// request is checked when the handler reads it.
func (s *Server) aclStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if exemptFromACL(info.FullMethod) {
		if err := s.checkServerPeer(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		if strings.HasPrefix(info.FullMethod, "/perfleet.v1.AgentService/") {
			if id, err := tlsutil.PeerIdentityFromContext(ss.Context()); err == nil && id.Role != tlsutil.RoleAgent {
				return endpoint.ToStatus(acl.ErrAccessDenied)
			}
		}
		return handler(srv, ss)
	}
	w := &checkedStream{ServerStream: ss, s: s, method: info.FullMethod, start: time.Now()}
	err := handler(srv, w)
	if !w.recorded {
		s.record(ss.Context(), info.FullMethod, w.start, w.id, w.t, w.req, nil, err)
	}
	return err
}

// checkedStream authorizes the first message a streaming handler receives.
type checkedStream struct {
	grpc.ServerStream
	s        *Server
	method   string
	start    time.Time
	id       *acl.Identity
	t        acl.Target
	req      proto.Message
	ctx      context.Context
	recorded bool
}

func (c *checkedStream) Context() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	return c.ServerStream.Context()
}

func (c *checkedStream) RecvMsg(m any) error {
	if err := c.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if c.id != nil || c.recorded {
		return nil
	}
	c.req, _ = m.(proto.Message)
	id, t, err := c.s.authorize(c.ServerStream.Context(), c.method, c.req)
	c.id, c.t = id, t
	if err != nil {
		err = endpoint.ToStatus(err)
		c.s.record(c.ServerStream.Context(), c.method, c.start, id, t, c.req, nil, err)
		c.recorded = true
		return err
	}
	c.ctx = acl.WithIdentity(c.ServerStream.Context(), id)
	// A stream's record is written when it starts: it may run for hours.
	c.s.record(c.ServerStream.Context(), c.method, c.start, id, t, c.req, nil, nil)
	c.recorded = true
	return nil
}

// eventSource is the CloudTrail eventSource of a method.
func eventSource(method string) string {
	if strings.HasPrefix(method, "/perfleet.v1.InferenceOptimization/") {
		return "sagemaker.amazonaws.com"
	}
	return "perfleet.amazonaws.com"
}

// record writes a call's audit record. Records of calls that change
// something are committed through Raft before the call returns; reads are
// batched.
func (s *Server) record(ctx context.Context, method string, start time.Time, id *acl.Identity, t acl.Target, req proto.Message, resp any, callErr error) {
	name := method[strings.LastIndexByte(method, '/')+1:]
	ev := audit.NewEvent(start)
	ev.EventSource, ev.EventName, ev.AWSRegion = eventSource(method), name, s.cfg.Region
	ev.ReadOnly = t.ReadOnly
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-amzn-requestid"); len(v) > 0 {
		ev.RequestID = v[0]
	} else {
		ev.RequestID = audit.NewEventID()
	}
	account := s.cfg.DefaultAccount
	if id != nil {
		account = id.Account
		ev.UserIdentity = audit.UserIdentity{Type: id.Type, PrincipalID: id.PrincipalID, ARN: id.PrincipalARN, AccountID: id.Account}
		if id.AuthBy == acl.ByAccessKey {
			ev.UserIdentity.AccessKeyID = id.CredentialID
		}
		ev.SourceIPAddress, ev.UserAgent = id.SourceIP, id.UserAgent
	} else {
		ev.UserIdentity = audit.UserIdentity{Type: "Unknown"}
		if v := md.Get("user-agent"); len(v) > 0 {
			ev.UserAgent = v[0]
		}
	}
	ev.RecipientAccountID = account
	// A throttled call's parameters are not recorded (null, as CloudTrail
	// often writes for refused calls): the record must stay cheap when a
	// tenant floods the API.
	if req != nil && !errors.Is(callErr, acl.ErrThrottled) {
		ev.RequestParameters = audit.Redact(req)
	}
	if m, ok := resp.(proto.Message); ok && callErr == nil && !t.ReadOnly {
		ev.ResponseElements = audit.Redact(m)
	}
	if t.Resource != "" {
		if a := accountOf(t.Resource); a != "" {
			ev.RecipientAccountID = a
		}
		ev.Resources = []audit.Resource{{ARN: t.Resource, AccountID: accountOf(t.Resource), Type: resourceType(t.Resource)}}
	}
	if callErr != nil {
		st := endpoint.ToStatus(callErr)
		ev.ErrorCode = endpoint.Reason(st)
		if ev.ErrorCode == "" {
			ev.ErrorCode = "InternalFailure"
		}
		ev.ErrorMessage = callErr.Error()
	}
	decision := "Allow"
	switch {
	case id != nil && (id.AuthBy == acl.ByNone):
		decision = "AclDisabled"
	case callErr != nil && ev.ErrorCode == "AccessDeniedException":
		decision = "Deny"
	case callErr != nil && ev.ErrorCode == "UnrecognizedClientException":
		decision = "Unauthenticated"
	}
	ev.Authorization = &audit.Authorization{Decision: decision, Action: t.Action}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("api call", "method", name, "request_id", ev.RequestID, "principal", ev.UserIdentity.ARN, "account", ev.RecipientAccountID,
			"code", ev.ErrorCode, "decision", decision, "duration", time.Since(start))
	}
	if errors.Is(callErr, acl.ErrThrottled) {
		s.sec.throttled(ev)
		return
	}
	rec := s.auditRecord(ev)
	if rec == nil {
		return
	}
	if !ev.ReadOnly && s.IsLeader() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := s.Apply(actx, fsm.AppendAuditEventsType, &pb.AppendAuditEventsCommand{Events: []*pb.AuditEvent{rec}}); err == nil {
			return
		}
		// Leadership moved under the call: the batch goes to the new leader.
	}
	s.sec.mu.Lock()
	s.sec.pending = append(s.sec.pending, rec)
	n := len(s.sec.pending)
	s.sec.mu.Unlock()
	if n >= 256 {
		select {
		case s.sec.kick <- struct{}{}:
		default:
		}
	}
}

// auditRecord encodes an event for the replicated audit table.
func (s *Server) auditRecord(ev *audit.Event) *pb.AuditEvent {
	b, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("audit record not encoded", "event", ev.EventName, "err", err)
		return nil
	}
	rec := &pb.AuditEvent{EventId: ev.EventID, EventTime: timestamppb.New(ev.EventTime), EventName: ev.EventName, PrincipalArn: ev.UserIdentity.ARN,
		AccountId: ev.RecipientAccountID, ReadOnly: ev.ReadOnly, ErrorCode: ev.ErrorCode, Json: string(b)}
	for _, r := range ev.Resources {
		rec.ResourceArns = append(rec.ResourceArns, r.ARN)
	}
	return rec
}

// throttleKey groups throttled calls: one principal, operation and source
// address in one second.
type throttleKey struct {
	principal, event, source string
	second                   int64
}

// throttleSummary is the first throttled call of a group and how many the
// group has.
type throttleSummary struct {
	ev    *audit.Event
	count int
	last  time.Time
}

// throttled counts a throttled call. A tenant that floods the API must not
// cost the others a Raft write per refused call (that was most of the cost
// of throttling), so throttled calls are summarised: one record per
// principal, operation, source address and second, the first call's, with
// additionalEventData {"throttledCount": N, "lastEventTime": …}.
func (sec *security) throttled(ev *audit.Event) {
	k := throttleKey{principal: ev.UserIdentity.ARN, event: ev.EventName, source: ev.SourceIPAddress, second: ev.EventTime.Unix()}
	sec.mu.Lock()
	defer sec.mu.Unlock()
	if sec.throttles == nil {
		sec.throttles = map[throttleKey]*throttleSummary{}
	}
	if t := sec.throttles[k]; t != nil {
		t.count++
		t.last = ev.EventTime
		return
	}
	sec.throttles[k] = &throttleSummary{ev: ev, count: 1, last: ev.EventTime}
}

// drainThrottled turns the summaries of seconds that have ended (all of
// them when all is set) into pending records.
func (s *Server) drainThrottled(all bool) {
	now := time.Now().Unix()
	s.sec.mu.Lock()
	var done []*throttleSummary
	for k, t := range s.sec.throttles {
		if all || k.second < now {
			done = append(done, t)
			delete(s.sec.throttles, k)
		}
	}
	s.sec.mu.Unlock()
	var recs []*pb.AuditEvent
	for _, t := range done {
		t.ev.AdditionalEventData, _ = json.Marshal(map[string]any{"throttledCount": t.count, "lastEventTime": t.last.UTC().Format(time.RFC3339Nano)})
		if rec := s.auditRecord(t.ev); rec != nil {
			recs = append(recs, rec)
		}
	}
	if len(recs) > 0 {
		s.sec.mu.Lock()
		s.sec.pending = append(s.sec.pending, recs...)
		s.sec.mu.Unlock()
	}
}

func accountOf(a string) string {
	parts := strings.SplitN(a, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// resourceType is the CloudTrail resource type of an ARN.
func resourceType(a string) string {
	parts := strings.SplitN(a, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	kind, _, _ := strings.Cut(parts[5], "/")
	switch parts[2] + ":" + kind {
	case "sagemaker:ai-benchmark-job":
		return "AWS::SageMaker::AIBenchmarkJob"
	case "sagemaker:ai-recommendation-job":
		return "AWS::SageMaker::AIRecommendationJob"
	case "sagemaker:ai-workload-config":
		return "AWS::SageMaker::AIWorkloadConfig"
	case "sagemaker:endpoint":
		return "AWS::SageMaker::Endpoint"
	case "iam:user":
		return "AWS::IAM::User"
	case "iam:role":
		return "AWS::IAM::Role"
	case "iam:policy":
		return "AWS::IAM::Policy"
	}
	return "Perfleet::" + kind
}

// flushAudit sends batched records to the leader every half second, or at
// once when 256 are waiting; it runs until the node stops (shutdown flushes
// once more, after the API has closed and before Raft stops).
func (s *Server) flushAudit() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.sec.kick:
		}
		s.drainThrottled(false)
		s.flushAuditOnce(s.ctx)
	}
}

func (s *Server) flushAuditOnce(parent context.Context) {
	s.sec.mu.Lock()
	batch := s.sec.pending
	s.sec.pending = nil
	s.sec.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, 5*time.Second)
	defer cancel()
	var err error
	for i := 0; i < len(batch); i += 512 {
		part := batch[i:min(i+512, len(batch))]
		if s.IsLeader() {
			_, err = s.Apply(ctx, fsm.AppendAuditEventsType, &pb.AppendAuditEventsCommand{Events: part})
		} else {
			err = s.forwardAudit(ctx, part)
		}
		if err != nil {
			s.sec.mu.Lock()
			all := append(batch[i:], s.sec.pending...)
			dropped := max(len(all)-maxPendingAudit, 0)
			s.sec.pending = all[dropped:] // bounded: a long partition drops the oldest
			s.sec.mu.Unlock()
			if dropped > 0 {
				s.log.Error("audit records dropped: the leader has been unreachable too long", "dropped", dropped, "kept", maxPendingAudit)
			}
			s.log.Warn("audit records not stored yet; will retry", "records", len(all)-dropped, "err", err)
			return
		}
	}
}

// maxPendingAudit bounds the audit records a node keeps while it cannot
// reach the leader.
const maxPendingAudit = 100_000

// forwardAudit hands records to the leader.
func (s *Server) forwardAudit(ctx context.Context, events []*pb.AuditEvent) error {
	addr, err := s.leaderGRPCAddr(ctx)
	if err != nil {
		return err
	}
	conn, err := s.conns.get(addr)
	if err != nil {
		return err
	}
	md := metadata.Pairs(forwardedHeader, s.cfg.NodeID, acl.HeaderInternal, acl.InternalKey(s.State().Meta().GetPageTokenKey()))
	return conn.Invoke(metadata.NewOutgoingContext(ctx, md), pb.OperatorService_RecordAuditEvents_FullMethodName,
		&pb.RecordAuditEventsRequest{Events: events}, &pb.RecordAuditEventsResponse{})
}

// RecordAuditEvents stores records a follower collected.
func (o *operator) RecordAuditEvents(ctx context.Context, req *pb.RecordAuditEventsRequest) (*pb.RecordAuditEventsResponse, error) {
	if len(req.GetEvents()) == 0 {
		return &pb.RecordAuditEventsResponse{}, nil
	}
	_, err := o.s.Apply(ctx, fsm.AppendAuditEventsType, &pb.AppendAuditEventsCommand{Events: req.GetEvents()})
	return &pb.RecordAuditEventsResponse{}, err
}

// forwardIdentity adds to a forwarded call's metadata the caller this node
// authenticated itself (a gateway caller) or whose certificate it saw, so
// the leader can authorize the call; the leader believes the headers only
// from a server (see acl.Authenticator).
func (s *Server) forwardIdentity(ctx context.Context, out metadata.MD) {
	for _, h := range []string{acl.HeaderPrincipal, acl.HeaderAuthBy, acl.HeaderCredID, acl.HeaderSourceIP, acl.HeaderInternal} {
		out.Delete(h)
	}
	principal, by, cred := "", "", ""
	if id := acl.FromContext(ctx); id != nil && id.PrincipalARN != "" {
		principal, by, cred = id.PrincipalARN, id.AuthBy, id.CredentialID
	} else if pid, err := tlsutil.PeerIdentityFromContext(ctx); err == nil && pid.Role == tlsutil.RoleClient && pid.Principal != "" {
		principal, by, cred = pid.Principal, acl.ByCertificate, pid.Serial
	}
	if p, ok := peer.FromContext(ctx); ok {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			out.Set(acl.HeaderSourceIP, host)
		}
	}
	if principal == "" {
		return
	}
	out.Set(acl.HeaderPrincipal, principal)
	out.Set(acl.HeaderAuthBy, by)
	out.Set(acl.HeaderCredID, cred)
	out.Set(acl.HeaderInternal, acl.InternalKey(s.State().Meta().GetPageTokenKey()))
}

// aclCredentials resolves the gateway's access keys from the ACL state;
// while ACLs are off it accepts the dev key test/test. The principal it
// reports is the access key ID, which gatewayUnary maps to the principal.
type aclCredentials struct{ s *Server }

func (c aclCredentials) Lookup(ctx context.Context, accessKeyID string) (gateway.Key, error) {
	if !c.s.State().ACLEnabled() {
		k, err := gateway.DevCredentials{}.Lookup(ctx, accessKeyID)
		k.Principal = accessKeyID
		return k, err
	}
	_, rec, err := c.s.sec.authn.ForAccessKey(accessKeyID)
	if err != nil {
		return gateway.Key{}, gateway.ErrUnknownAccessKey
	}
	return gateway.Key{SecretAccessKey: rec.GetSecretAccessKey(), SessionToken: rec.GetSessionToken(), Principal: accessKeyID}, nil
}

// gatewayUnary runs a gateway call through the same routing, authorization
// and audit as a gRPC call, as the principal of the signing access key.
func (s *Server) gatewayUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, span := s.tel.tracer.Start(ctx, strings.TrimPrefix(info.FullMethod, "/"), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "sagemaker-json"), attribute.String("rpc.method", info.FullMethod)))
	defer func() {
		s.observeCall(ctx, "gateway", info.FullMethod, start, err)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if keyID, ok := gateway.Principal(ctx); ok {
		id, _, err := s.sec.authn.ForAccessKey(keyID)
		if err != nil {
			return nil, endpoint.ToStatus(err)
		}
		if id.AuthBy == acl.ByNone {
			id.CredentialID = keyID
		}
		id.UserAgent = gateway.UserAgent(ctx)
		id.SourceIP = gateway.SourceIP(ctx)
		id.SecureTransport = gateway.SecureTransport(ctx)
		ctx = acl.WithIdentity(ctx, id)
	}
	return s.routeUnary(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return s.aclUnary(ctx, req, info, handler)
	})
}

// secretAccess lets a job read a stored secret when ACLs are off, or when
// its role's policies allow perfleet:GetSecretValue on the secret, with
// aws:SourceAccount and aws:SourceArn naming the job (so a policy can bind
// a secret to one account's jobs and no confused deputy can borrow it).
func (s *Server) secretAccess(j *state.Job, name string) error {
	return s.asJobRole(j, auth.ActionGetSecretValue, s.sec.res.PerfleetARN(j.Account, "secret/"+name))
}

// outputAccess lets a job write results to s3://bucket/prefix when ACLs are
// off, or when its role's policies allow s3:PutObject on
// arn:aws:s3:::bucket/prefix/<job>/*. file:// locations are the servers'
// own disks and are not governed by policies.
func (s *Server) outputAccess(j *state.Job, location string) error {
	rest, ok := strings.CutPrefix(location, "s3://")
	if !ok {
		return nil
	}
	return s.asJobRole(j, "s3:PutObject", "arn:"+s.cfg.Partition+":s3:::"+strings.TrimSuffix(rest, "/")+"/"+j.Name+"/*")
}

// asJobRole authorizes perfleet acting for a job, as the job's role.
func (s *Server) asJobRole(j *state.Job, action, resource string) error {
	if !s.State().ACLEnabled() {
		return nil
	}
	role := ""
	if j.Benchmark != nil {
		role = j.Benchmark.GetJob().GetRoleArn()
	} else if j.Recommend != nil {
		role = j.Recommend.GetJob().GetRoleArn()
	}
	if role == "" {
		return fmt.Errorf("%w: the job has no role_arn; with ACLs on, a job acts as its role", acl.ErrAccessDenied)
	}
	p, err := s.State().Principal(role)
	if err != nil || p.GetType() != pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
		return fmt.Errorf("%w: the job's role %s does not exist", acl.ErrAccessDenied, role)
	}
	id := &acl.Identity{}
	acl.FillPrincipal(id, p)
	id.AuthBy = "role"
	return s.sec.authz.Authorize(id, acl.Target{Action: action, Resource: resource, SourceAccount: j.Account, SourceArn: j.ARN()})
}

// deadlineUnary gives calls without a deadline the configured default, so a
// stuck call cannot hold resources forever.
func (s *Server) deadlineUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok && s.cfg.DefaultCallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DefaultCallTimeout)
		defer cancel()
	}
	return handler(ctx, req)
}
