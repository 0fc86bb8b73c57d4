// Package gossip runs the fleet's membership pool (hashicorp/memberlist)
// shared by coordinators and agents. Each node gossips compact, versioned
// metadata (role, ID, gRPC address, instance type, GPUs, labels); gossip says
// who is alive, and the coordinator leader turns it into replicated state.
package gossip

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// Node roles.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// metaVersion is the first byte of encoded metadata.
const metaVersion byte = 1

// ErrMetaTooLarge is returned when metadata exceeds memberlist's limit.
var ErrMetaTooLarge = errors.New("gossip metadata exceeds 512 bytes")

// EncodeMeta encodes metadata: one version byte, then protobuf.
func EncodeMeta(m *pb.GossipMeta) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := append([]byte{metaVersion}, b...)
	if len(out) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w (%d bytes): use fewer or shorter labels", ErrMetaTooLarge, len(out))
	}
	return out, nil
}

// DecodeMeta decodes metadata written by EncodeMeta.
func DecodeMeta(b []byte) (*pb.GossipMeta, error) {
	if len(b) == 0 || b[0] != metaVersion {
		return nil, fmt.Errorf("unknown gossip metadata version")
	}
	m := &pb.GossipMeta{}
	return m, proto.Unmarshal(b[1:], m)
}

// State is a member's gossip state.
type State string

// Member states.
const (
	StateAlive   State = "alive"
	StateSuspect State = "suspect"
	StateFailed  State = "failed"
	StateLeft    State = "left"
)

// Member is one node as this node sees it.
type Member struct {
	Name  string
	Addr  string
	State State
	Meta  *pb.GossipMeta
	// Since is when this node last saw the member change state.
	Since time.Time
}

// Config configures a pool.
type Config struct {
	// Name is the node's unique name (agent ID or server node ID).
	Name string
	// BindAddr is host:port to listen on (TCP and UDP); port 0 picks one.
	BindAddr string
	// AdvertiseAddr is the host:port others reach this node at; BindAddr's
	// when empty.
	AdvertiseAddr string
	// Key is the gossip encryption key (16, 24 or 32 bytes); nil means no
	// encryption. A node without the key cannot join a pool that has one.
	Key []byte
	// KeyringFile, when set, keeps the keyring across restarts: it is
	// written on every keyring change and, when it exists, read at start
	// in place of Key, so a node restarted after a rotation still holds
	// the keys in use.
	KeyringFile string
	// Meta is this node's metadata.
	Meta *pb.GossipMeta
	// Fast shortens probe and gossip intervals, for tests.
	Fast bool
	// Transport replaces the UDP and TCP transport (tests run pools over
	// memberlist's mock network, with loss and delay injected).
	Transport memberlist.NodeAwareTransport
	// OnChange is called, outside the pool's locks, after a member changed.
	OnChange func(Member)
	// Logger receives memberlist's logs at debug level.
	Logger *slog.Logger
}

// Pool is a running gossip membership.
type Pool struct {
	ml       *memberlist.Memberlist
	mu       sync.Mutex
	metaMsg  *pb.GossipMeta
	meta     []byte
	members  map[string]Member
	onChange func(Member)
	log      *slog.Logger

	keyring     *memberlist.Keyring // nil: the pool is not encrypted
	keyringFile string
	keyMu       sync.Mutex // serializes keyring changes and their saving
}

// Start creates the pool and listens. Call Join to meet other nodes.
func Start(cfg Config) (*Pool, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	meta, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	p := &Pool{metaMsg: cfg.Meta, meta: meta, members: map[string]Member{}, onChange: cfg.OnChange, log: cfg.Logger}
	mc := memberlist.DefaultLANConfig()
	// Suspicion lasts SuspicionMult × log10(members) probe intervals: 3
	// (the LAN default is 4) declares a dead agent among 50 failed within
	// 10 s; at 5% packet loss and 100 ms jitter the reliability suite sees
	// no false failures with it.
	mc.SuspicionMult = 3
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 20 * time.Millisecond
		mc.SuspicionMult = 2
		mc.PushPullInterval = 2 * time.Second
		mc.TCPTimeout = time.Second
	}
	// A node that failed may come back at a new address under its old name.
	mc.DeadNodeReclaimTime = 30 * time.Second
	if cfg.Fast {
		mc.DeadNodeReclaimTime = time.Second
	}
	mc.Name = cfg.Name
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: %w", cfg.BindAddr, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("gossip advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
	}
	keys := [][]byte(nil)
	if len(cfg.Key) > 0 {
		keys = [][]byte{cfg.Key}
	}
	if cfg.KeyringFile != "" {
		saved, err := loadKeyring(cfg.KeyringFile)
		if err != nil {
			return nil, err
		}
		if len(saved) > 0 {
			keys = saved
		}
	}
	p.keyringFile = cfg.KeyringFile
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		p.keyring = kr
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.Logger = log.New(slogWriter{cfg.Logger}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	p.ml = ml
	return p, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	return host, port, err
}

// Join contacts the given gossip addresses and returns how many answered.
func (p *Pool) Join(addrs []string) (int, error) { return p.ml.Join(addrs) }

// Addr is the address other nodes reach this one at.
func (p *Pool) Addr() string {
	n := p.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members returns every member this node knows, including failed and left
// ones, with their current states.
func (p *Pool) Members() []Member {
	live := map[string]memberlist.NodeStateType{}
	for _, n := range p.ml.Members() {
		live[n.Name] = n.State
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Member, 0, len(p.members))
	for name, m := range p.members {
		if st, ok := live[name]; ok && st == memberlist.StateSuspect && m.State == StateAlive {
			m.State = StateSuspect
		}
		out = append(out, m)
	}
	return out
}

// UpdateMeta changes this node's metadata and gossips it.
func (p *Pool) UpdateMeta(m *pb.GossipMeta) error {
	b, err := EncodeMeta(m)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.metaMsg, p.meta = m, b
	p.mu.Unlock()
	return p.ml.UpdateNode(5 * time.Second)
}

// Leave announces a graceful departure, then stops the pool. memberlist
// reports a leave and a failure alike to its event delegate, so the node
// first gossips metadata marked leaving: peers then record "left".
func (p *Pool) Leave(timeout time.Duration) error {
	p.mu.Lock()
	m := proto.Clone(p.metaMsg).(*pb.GossipMeta)
	p.mu.Unlock()
	m.Leaving = true
	err := p.UpdateMeta(m)
	err = errors.Join(err, p.ml.Leave(timeout))
	return errors.Join(err, p.ml.Shutdown())
}

// Shutdown stops the pool without announcing a departure (peers will see a
// failure).
func (p *Pool) Shutdown() error { return p.ml.Shutdown() }

func (p *Pool) record(n *memberlist.Node, st State) {
	m := Member{Name: n.Name, Addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), State: st, Since: time.Now()}
	if meta, err := DecodeMeta(n.Meta); err == nil {
		m.Meta = meta
	} else {
		p.log.Warn("gossip member with unreadable metadata", "member", n.Name, "err", err)
	}
	p.mu.Lock()
	p.members[n.Name] = m
	cb := p.onChange
	p.mu.Unlock()
	if cb != nil {
		cb(m)
	}
}

type delegate Pool

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events Pool

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Pool)(e).record(n, StateAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Pool)(e).record(n, StateAlive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := StateFailed
	if meta, err := DecodeMeta(n.Meta); n.State == memberlist.StateLeft || (err == nil && meta.GetLeaving()) {
		st = StateLeft
	}
	(*Pool)(e).record(n, st)
}

// slogWriter sends memberlist's log lines to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug(string(trimNL(b)), "component", "memberlist")
	return len(b), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

var _ io.Writer = slogWriter{}
