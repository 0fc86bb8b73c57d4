package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/perfleet/perfleet/pkg/tlsutil"
)

// raftTLSLayer is hashicorp/raft's stream layer over mutual TLS: both ends
// must hold server certificates of the cluster's CA, so neither an agent's
// nor a client's certificate can take part in consensus. Configurations are
// read per connection, so rotated certificates apply to new connections.
type raftTLSLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tlsutil.Reloader
	log       *slog.Logger
}

// handshakeTimeout bounds a Raft connection's TLS handshake.
const handshakeTimeout = 5 * time.Second

var _ raft.StreamLayer = (*raftTLSLayer)(nil)

// Accept returns the next connection that completed a handshake with a
// server certificate; failed handshakes are logged and skipped.
func (l *raftTLSLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := tls.Server(c, l.tls.ServerConfig())
		_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
		err = tc.Handshake()
		if err == nil {
			var id tlsutil.Identity
			if id, err = tlsutil.PeerIdentity(tc.ConnectionState()); err == nil && id.Role != tlsutil.RoleServer {
				err = fmt.Errorf("%w: %s may not join Raft", tlsutil.ErrRoleNotAllowed, id)
			}
		}
		if err != nil {
			l.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			continue
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	}
}

// Addr is the advertised address when one is set.
func (l *raftTLSLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}

// Dial connects to a peer and requires its server certificate.
func (l *raftTLSLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, l.tls.ClientConfig())
	_ = tc.SetDeadline(time.Now().Add(min(timeout, handshakeTimeout)))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", address, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// newRaftTransport is the Raft transport: TCP, or TLS when the node has a
// certificate.
func (s *Server) newRaftTransport(advertise net.Addr, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", s.cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if ta, ok := advertise.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		ln.Close()
		return nil, errors.New("raft_addr must name the address other servers reach, not 0.0.0.0; or give raft_advertise (--raft-advertise)")
	}
	var layer raft.StreamLayer
	if s.tls != nil {
		layer = &raftTLSLayer{Listener: ln, advertise: advertise, tls: s.tls, log: s.log.With("component", "raft-tls")}
	} else {
		layer = &tcpLayer{Listener: ln, advertise: advertise}
	}
	if s.cfg.WrapRaftStream != nil {
		layer = s.cfg.WrapRaftStream(layer)
	}
	layer = &closingLayer{StreamLayer: layer, conns: map[net.Conn]struct{}{}}
	// MaxRPCsInFlight 1 turns off hashicorp/raft's pipelined replication:
	// when a follower refuses an append while the pipeline is busy, the
	// pipeline's decoder and sender wait on each other for good, the
	// follower stops receiving entries while heartbeats still flow, and
	// Raft's Shutdown never returns. The reliability suite's stalled-leader
	// test hit it; batching (MaxAppendEntries) keeps commits fast without it.
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 3, MaxRPCsInFlight: 1,
		Timeout: 10 * time.Second, Logger: logger}), nil
}

// hostPortAddr is an advertised address given as host:port, where the host
// may be a DNS name: peers resolve it each time they dial.
type hostPortAddr string

func (a hostPortAddr) Network() string { return "tcp" }
func (a hostPortAddr) String() string  { return string(a) }

// raftAdvertiseAddr checks raft_advertise. Plaintext Raft (insecure
// loopback) uses hashicorp/raft's TCP transport, which needs an IP address.
func raftAdvertiseAddr(hostport string, tls bool) (net.Addr, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" || port == "0" {
		return nil, fmt.Errorf("raft_advertise %q must be host:port with a fixed port", hostport)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return nil, fmt.Errorf("raft_advertise %q must be an address other servers reach, not 0.0.0.0", hostport)
		}
		return net.ResolveTCPAddr("tcp", hostport)
	}
	if !tls {
		return net.ResolveTCPAddr("tcp", hostport)
	}
	return hostPortAddr(hostport), nil
}

// closingLayer closes every connection it accepted or dialed when the
// transport closes. hashicorp/raft's NetworkTransport closes only its
// listener: a goroutine serving an accepted connection would otherwise wait
// on it until the peer hangs up, and a node stopped in-process would keep
// answering reads on its old connections.
type closingLayer struct {
	raft.StreamLayer
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *closingLayer) track(c net.Conn) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *closingLayer) Accept() (net.Conn, error) {
	c, err := l.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

func (l *closingLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

// Close closes the listener and every open connection.
func (l *closingLayer) Close() error {
	err := l.StreamLayer.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.(*trackedConn).Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l *closingLayer
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// tcpLayer is a plain TCP stream layer (insecure loopback only).
type tcpLayer struct {
	net.Listener
	advertise net.Addr
}

func (l *tcpLayer) Addr() net.Addr { return l.advertise }

func (l *tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
