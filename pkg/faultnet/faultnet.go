// Package faultnet injects network faults into Raft traffic inside one
// process: partitions, one-way cuts, delays and stalls (a node whose traffic
// stops but whose connections stay open, as under SIGSTOP). It wraps a
// hashicorp/raft StreamLayer, so the Raft code under test is the real one;
// only the wire between nodes misbehaves.
//
// Nodes are named by the address their stream layer advertises. Every
// connection a wrapped layer dials starts with a one-line header carrying the
// dialer's name, so the accepting side knows which link a connection is on.
// Both ends of every link must therefore be wrapped by the same Net.
package faultnet

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrCut is returned for traffic over a link the test has cut.
var ErrCut = errors.New("faultnet: link cut")

type link struct{ from, to string }

// Net is the shared fault state of every wrapped node in a test.
type Net struct {
	mu      sync.Mutex
	cond    *sync.Cond
	cut     map[link]bool
	delay   map[string]time.Duration // extra latency on traffic a node sends
	jitter  map[string]time.Duration
	stalled map[string]bool
	conns   map[*conn]struct{}
	stats   Stats
}

// Stats counts what the faults did.
type Stats struct {
	Dials, DialsRefused, ConnsCut int
}

// New returns a Net with every link healthy.
func New() *Net {
	n := &Net{cut: map[link]bool{}, delay: map[string]time.Duration{}, jitter: map[string]time.Duration{},
		stalled: map[string]bool{}, conns: map[*conn]struct{}{}}
	n.cond = sync.NewCond(&n.mu)
	return n
}

// Stats returns the counters so far.
func (n *Net) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Partition splits the named nodes into groups that cannot reach each other;
// links inside a group are healed. Nodes not named keep their links.
func (n *Net) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	group := map[string]int{}
	for i, g := range groups {
		for _, a := range g {
			group[a] = i
		}
	}
	for a, ga := range group {
		for b, gb := range group {
			if a == b {
				continue
			}
			if ga == gb {
				delete(n.cut, link{a, b})
			} else {
				n.cut[link{a, b}] = true
			}
		}
	}
	n.severLocked()
}

// Isolate cuts every link between node and the others.
func (n *Net) Isolate(node string, others []string) {
	var rest []string
	for _, o := range others {
		if o != node {
			rest = append(rest, o)
		}
	}
	n.Partition([]string{node}, rest)
}

// CutOneWay drops traffic from one node to another while the other
// direction works, as a broken route or firewall rule would.
func (n *Net) CutOneWay(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = true
	n.severLocked()
}

// Delay adds latency, plus up to jitter at random, to everything node sends.
func (n *Net) Delay(node string, latency, jitter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay[node], n.jitter[node] = latency, jitter
}

// Stall stops all traffic to and from node without closing its
// connections: reads and writes block until Resume, as when the process is
// stopped. Dials to it hang until Resume or their timeout.
func (n *Net) Stall(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stalled[node] = true
}

// Resume lets a stalled node's traffic flow again.
func (n *Net) Resume(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.stalled, node)
	n.cond.Broadcast()
}

// Heal removes every cut, delay and stall.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]bool{}
	n.delay = map[string]time.Duration{}
	n.jitter = map[string]time.Duration{}
	n.stalled = map[string]bool{}
	n.cond.Broadcast()
}

// severLocked closes open connections that run over a cut link, so blocked
// reads end the way they do when a route disappears and the peer resets.
func (n *Net) severLocked() {
	for c := range n.conns {
		if n.cut[link{c.local, c.remote}] || n.cut[link{c.remote, c.local}] {
			delete(n.conns, c)
			n.stats.ConnsCut++
			go c.Conn.Close()
		}
	}
	n.cond.Broadcast()
}

// pass waits while either end is stalled and reports whether traffic from
// one node to another may pass.
func (n *Net) pass(from, to string, deadline time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.stalled[from] || n.stalled[to] {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("faultnet: %s -> %s stalled: %w", from, to, errTimeout)
		}
		if !deadline.IsZero() {
			// Wake up to honour the deadline even if nobody resumes.
			t := time.AfterFunc(time.Until(deadline), func() { n.mu.Lock(); n.cond.Broadcast(); n.mu.Unlock() })
			n.cond.Wait()
			t.Stop()
		} else {
			n.cond.Wait()
		}
	}
	if n.cut[link{from, to}] {
		return fmt.Errorf("%w: %s -> %s", ErrCut, from, to)
	}
	return nil
}

func (n *Net) latency(from string) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.delay[from]
	if j := n.jitter[from]; j > 0 {
		d += time.Duration(rand.Int64N(int64(j)))
	}
	return d
}

var errTimeout = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

// Wrap returns inner with faults applied to its traffic. The node is named
// by inner.Addr().
func (n *Net) Wrap(inner raft.StreamLayer) raft.StreamLayer {
	return &layer{StreamLayer: inner, net: n, name: inner.Addr().String()}
}

type layer struct {
	raft.StreamLayer
	net  *Net
	name string
}

// Accept reads the dialer's name from each new connection and refuses those
// over a cut link.
func (l *layer) Accept() (net.Conn, error) {
	for {
		c, err := l.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		_ = c.SetReadDeadline(time.Time{})
		if err != nil || !strings.HasPrefix(line, "faultnet ") {
			c.Close()
			continue
		}
		remote := strings.TrimSpace(strings.TrimPrefix(line, "faultnet "))
		if err := l.net.pass(remote, l.name, time.Time{}); err != nil {
			c.Close()
			continue
		}
		return l.net.track(&conn{Conn: c, r: r, net: l.net, local: l.name, remote: remote}), nil
	}
}

// Dial connects unless the link is cut, and names this node to the peer.
func (l *layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to := string(address)
	l.net.mu.Lock()
	l.net.stats.Dials++
	l.net.mu.Unlock()
	if err := l.net.pass(l.name, to, time.Now().Add(timeout)); err != nil {
		l.net.mu.Lock()
		l.net.stats.DialsRefused++
		l.net.mu.Unlock()
		return nil, err
	}
	c, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(c, "faultnet %s\n", l.name); err != nil {
		c.Close()
		return nil, err
	}
	return l.net.track(&conn{Conn: c, net: l.net, local: l.name, remote: to}), nil
}

func (n *Net) track(c *conn) net.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns[c] = struct{}{}
	return c
}

type conn struct {
	net.Conn
	r             *bufio.Reader // holds bytes read past the header, if any
	net           *Net
	local, remote string
	rdl, wdl      time.Time
	mu            sync.Mutex
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.rdl
	c.mu.Unlock()
	if err := c.net.pass(c.remote, c.local, dl); err != nil {
		return 0, err
	}
	var n int
	var err error
	if c.r != nil && c.r.Buffered() > 0 {
		n, err = c.r.Read(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	if err == nil {
		// Bytes that arrived while the link was being cut or stalled are
		// held back like the rest.
		if perr := c.net.pass(c.remote, c.local, dl); perr != nil {
			return 0, perr
		}
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	if err := c.net.pass(c.local, c.remote, dl); err != nil {
		return 0, err
	}
	if d := c.net.latency(c.local); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	c.net.mu.Lock()
	delete(c.net.conns, c)
	c.net.mu.Unlock()
	return c.Conn.Close()
}

func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}
