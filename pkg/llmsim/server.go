package llmsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStarted is returned by Start on a server that was already started or
// closed.
var ErrStarted = errors.New("llmsim: server already started or closed")

// Server is a simulated OpenAI-compatible LLM server. Create it with New,
// mount Handler on an http.Server, and call Start to run the scheduler.
// It runs Config.Copies engines, one per data-parallel copy, driven by one
// scheduler loop; router picks the engine of each request.
type Server struct {
	cfg        Config
	engs       []*engine // one per copy
	router     *router
	origin     time.Time // virtual time 0
	mux        *http.ServeMux
	models     map[string][]byte // served name → JSON-quoted name
	modelsJSON []byte

	lateness *atomicHistogram // streamed write time − scheduled token time

	reqIndex                    atomic.Uint64
	received, completed, failed atomic.Uint64
	started                     atomic.Bool
	wake, closed, loopDone      chan struct{}
	closeOnce                   sync.Once
}

// New validates cfg, fills defaults and returns a server that is not yet
// running.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		engs:     make([]*engine, cfg.Copies),
		router:   newRouter(cfg.Copies),
		lateness: newAtomicHistogram(latenessBuckets),
		origin:   time.Now(),
		models:   make(map[string][]byte, len(cfg.Models)),
		wake:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	for i := range s.engs {
		s.engs[i] = newEngine(cfg.Profile, int64(cfg.Tick))
	}
	type model struct {
		ID          string `json:"id"`
		Object      string `json:"object"`
		Created     int64  `json:"created"`
		OwnedBy     string `json:"owned_by"`
		Root        string `json:"root"`
		MaxModelLen int    `json:"max_model_len"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list"}
	for _, m := range cfg.Models {
		q, _ := json.Marshal(m)
		s.models[m] = q
		list.Data = append(list.Data, model{m, "model", s.origin.Unix(), "llmsim", m, cfg.Profile.MaxModelLen})
	}
	s.modelsJSON, _ = json.Marshal(list)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.handleCompletion(w, r, true) })
	s.mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { s.handleCompletion(w, r, false) })
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	return s, nil
}

// Handler returns the HTTP handler: POST /v1/chat/completions,
// POST /v1/completions, GET /v1/models, GET /health and GET /metrics.
func (s *Server) Handler() http.Handler { return s.mux }

// Config returns the configuration in use, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Start runs the scheduler loop until ctx is cancelled or Close is called;
// it returns at once. /health answers 200 from then on.
func (s *Server) Start(ctx context.Context) error {
	if s.isClosed() || !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	go s.loop(ctx)
	return nil
}

// Close stops the scheduler and aborts requests in flight. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.shutdown()
	if s.started.Load() {
		<-s.loopDone
	}
	return nil
}

// shutdown marks the server closed; the loop then stops and wakes every
// handler waiting on the engine, so that each aborts its request.
func (s *Server) shutdown() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// isClosed reports whether Close was called or the Start context ended.
func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// ready reports whether requests are served.
func (s *Server) ready() bool { return s.started.Load() && !s.isClosed() }

// now is the engine's virtual time: nanoseconds since New.
func (s *Server) now() int64 { return int64(time.Since(s.origin)) }

// advanceBudget bounds one engine step of the live loop. Go's scheduler has
// no priorities: a goroutine that runs past its 10 ms slice is preempted to
// the back of the global run queue, behind every runnable stream handler,
// and under overload the engine would then lose the race against the very
// handlers it feeds. Bounded steps followed by a short sleep keep the loop
// waking from a timer, which puts it at the front of a run queue.
const advanceBudget = 2 * time.Millisecond

// minLoopSleep is the shortest pause between engine steps.
const minLoopSleep = 50 * time.Microsecond

// loop drives the engines with the wall clock: every tick it fires the
// deadlines that are due in each copy (when behind, it catches up in
// bounded steps, the budget shared by the copies); with nothing scheduled
// it sleeps until a request arrives.
func (s *Server) loop(ctx context.Context) {
	defer close(s.loopDone)
	defer s.wakeAll() // after shutdown: see submit
	defer s.shutdown()
	timer := time.NewTimer(s.cfg.Tick)
	defer timer.Stop()
	budget := max(advanceBudget/time.Duration(len(s.engs)), time.Microsecond)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-timer.C:
		}
		start := time.Now()
		now, behind := s.now(), false
		for _, e := range s.engs {
			if e.advance(now, budget) {
				behind = true
			}
		}
		if !behind && s.idle() {
			select {
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			case <-s.wake:
			}
			start = time.Now()
		}
		d := s.cfg.Tick - time.Since(start)
		if behind || d < minLoopSleep {
			d = minLoopSleep
		}
		timer.Reset(d)
	}
}

// idle reports whether no copy has anything scheduled or submitted. Only
// the loop may call it.
func (s *Server) idle() bool {
	for _, e := range s.engs {
		if !e.idle() {
			return false
		}
	}
	return true
}

// wakeAll wakes the handler of every sequence of every copy. Only the loop
// may call it.
func (s *Server) wakeAll() {
	for _, e := range s.engs {
		e.wakeAll()
	}
}

// submit hands a sequence to engine e, stamped with the current time.
// A server closed meanwhile may have missed it in wakeAll, so it is woken
// here.
func (s *Server) submit(e *engine, sq *seq) {
	sq.arrival = s.now()
	e.submit(sq)
	if s.isClosed() {
		sq.wake()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// handleHealth answers 200 while the server is running, 503 otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if !s.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handleModels lists the served model names.
func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.modelsJSON)
}

// handleCompletion serves both completion endpoints: validate, plan, inject
// errors, then run the request through the engine of the copy the router
// picks. The plan is drawn before routing, so the copy a request lands on
// never changes its text, length or faults.
func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request, chat bool) {
	s.received.Add(1)
	if !s.ready() {
		s.fail(w, &apiError{status: http.StatusServiceUnavailable, typ: "server_error", message: "llmsim is not running"})
		return
	}
	req, prompt, aerr := decodeRequest(r, chat)
	if aerr != nil {
		s.fail(w, aerr)
		return
	}
	model, ok := s.models[req.Model]
	if !ok {
		s.fail(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
			message: "The model `" + req.Model + "` does not exist."})
		return
	}
	p, aerr := s.newPlan(req, prompt, s.reqIndex.Add(1)-1)
	if aerr != nil {
		s.fail(w, aerr)
		return
	}
	if p.errStatus != 0 {
		s.fail(w, injectedError(p.errStatus))
		return
	}
	sq := newSeq(p.promptTokens, p.outLen)
	sq.eos, sq.stream = p.eos, req.Stream
	if p.stallBefore > 0 {
		sq.stallBefore, sq.stallNs = p.stallBefore, int64(s.cfg.Faults.StallDuration)
	}
	c := s.router.acquire()
	defer s.router.release(c) // also when the handler aborts with a panic
	eng := s.engs[c]
	s.submit(eng, sq)
	rs := &responder{s: s, eng: eng, w: w, r: r, req: req, plan: &p, sq: sq, chat: chat, model: model,
		created: time.Now().Unix(), timestamps: s.cfg.Timestamps || timestampsRequested(r)}
	if req.Stream {
		rs.stream()
	} else {
		rs.full()
	}
}

// fail answers an error and counts the request as failed.
func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	s.failed.Add(1)
	writeAPIError(w, e)
}

// timestampsRequested reports whether the request asks for send timestamps
// with the header "x-llmsim-timestamps: 1" (or "true").
func timestampsRequested(r *http.Request) bool {
	v := r.Header.Get("x-llmsim-timestamps")
	return v == "1" || v == "true"
}
