package main

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// simNet is memberlist's in-process MockNetwork with a datagram path that
// behaves like UDP. The mock hands each packet over an unbuffered channel,
// so the sender blocks until the receiver's packet loop takes it; memberlist
// answers pings from inside that loop, so two nodes pinging each other can
// block each other, and with a thousand nodes such cycles do form. Here each
// node gets a bounded inbox (its "socket buffer"): a send never blocks, a
// full inbox drops the packet, and a killed node receives and sends nothing.
// Streams (push/pull, TCP fallback pings) still go over the mock's pipes.
type simNet struct {
	mock    *memberlist.MockNetwork
	byAddr  map[string]*simTransport // written only before any node starts
	inbox   int
	sent    atomic.Int64
	dropped atomic.Int64 // inbox full, or to or from a killed node

	watched   atomic.Pointer[string]    // member whose first suspicion is awaited
	suspected atomic.Pointer[suspicion] // when it was first suspected on the wire
}

func newSimNet(inbox int) *simNet {
	return &simNet{mock: &memberlist.MockNetwork{}, byAddr: map[string]*simTransport{}, inbox: inbox}
}

// simAddr is a packet's source address.
type simAddr string

func (a simAddr) Network() string { return "mock" }
func (a simAddr) String() string  { return string(a) }

type simTransport struct {
	*memberlist.MockTransport
	net   *simNet
	addr  simAddr
	inbox chan *memberlist.Packet
	dead  atomic.Bool
}

var _ memberlist.NodeAwareTransport = (*simTransport)(nil)

// transport adds a node to the network. Call it for every node before
// starting any: the mock's address tables are not safe for concurrent use.
func (n *simNet) transport(name string) (*simTransport, error) {
	mt := n.mock.NewTransport(name)
	ip, port, err := mt.FinalAdvertiseAddr("", 0)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
	t := &simTransport{MockTransport: mt, net: n, addr: simAddr(addr), inbox: make(chan *memberlist.Packet, n.inbox)}
	n.byAddr[addr] = t
	return t, nil
}

func (t *simTransport) PacketCh() <-chan *memberlist.Packet { return t.inbox }

func (t *simTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *simTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.net.sent.Add(1)
	dst := t.net.byAddr[a.Addr]
	if dst == nil {
		return now, fmt.Errorf("no route to %s", a.Addr)
	}
	if !t.dead.Load() {
		t.net.sniff(b, now)
	}
	if t.dead.Load() || dst.dead.Load() {
		t.net.dropped.Add(1)
		return now, nil // lost on the wire, as UDP would be
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr, Timestamp: now}
	select {
	case dst.inbox <- p:
	default:
		t.net.dropped.Add(1)
	}
	return now, nil
}

// IngestPacket takes a packet that arrived over a stream (memberlist's TCP
// fallback) into this node's inbox.
func (t *simTransport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	if shouldClose {
		defer conn.Close()
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, conn); err != nil {
		return fmt.Errorf("read packet: %w", err)
	}
	if buf.Len() < 1 {
		return fmt.Errorf("packet too short (%d bytes) from %s", buf.Len(), addr)
	}
	select {
	case t.inbox <- &memberlist.Packet{Buf: buf.Bytes(), From: addr, Timestamp: now}:
	default:
		t.net.dropped.Add(1)
	}
	return nil
}

func (t *simTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *simTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dst := t.net.byAddr[a.Addr]
	if dst == nil {
		return nil, fmt.Errorf("no route to %s", a.Addr)
	}
	if t.dead.Load() || dst.dead.Load() {
		return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
	}
	return t.MockTransport.DialAddressTimeout(a, timeout)
}

// kill takes the node off the network at once: nothing more reaches it or
// leaves it. A dial that raced the kill is refused by a drainer, which runs
// until stop closes, so no peer waits on the dead node's stream channel.
func (t *simTransport) kill(stop <-chan struct{}) {
	t.dead.Store(true)
	go func() {
		for {
			select {
			case <-stop:
				return
			case c := <-t.MockTransport.StreamCh():
				c.Close()
			case <-t.inbox:
			}
		}
	}()
}

// Wire sniffing: to time the first suspicion of the killed member (pkg/gossip
// reports failures, not suspicions), packets are decoded while a watch is
// set, until the first suspect message about the watched member is sent.
// The formats are memberlist's: an optional CRC header, LZW compression in
// a msgpack envelope, compound messages, then one type byte and a msgpack
// body.
const (
	wireSuspect  = 3  // suspectMsg
	wireCompound = 7  // compoundMsg
	wireCompress = 9  // compressMsg
	wireHasCRC   = 12 // hasCrcMsg
	lzwLitWidth  = 8
)

type suspicion struct {
	at   time.Time
	from string
}

type wireCompressed struct {
	Algo int
	Buf  []byte
}

type wireSuspectMsg struct {
	Incarnation uint32
	Node        string
	From        string
}

// watch starts looking for a suspect message about node.
func (n *simNet) watch(node string) { n.watched.Store(&node) }

func (n *simNet) sniff(b []byte, now time.Time) {
	w := n.watched.Load()
	if w == nil || n.suspected.Load() != nil {
		return
	}
	if from, ok := findSuspect(b, *w, 0); ok {
		n.suspected.CompareAndSwap(nil, &suspicion{at: now, from: from})
		n.watched.Store(nil)
	}
}

func findSuspect(b []byte, node string, depth int) (string, bool) {
	if len(b) < 1 || depth > 3 {
		return "", false
	}
	switch b[0] {
	case wireHasCRC:
		if len(b) < 5 {
			return "", false
		}
		return findSuspect(b[5:], node, depth+1)
	case wireCompress:
		var c wireCompressed
		if err := codec.NewDecoderBytes(b[1:], &codec.MsgpackHandle{}).Decode(&c); err != nil || c.Algo != 0 {
			return "", false
		}
		r := lzw.NewReader(bytes.NewReader(c.Buf), lzw.LSB, lzwLitWidth)
		defer r.Close()
		raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return "", false
		}
		return findSuspect(raw, node, depth+1)
	case wireCompound:
		if len(b) < 2 {
			return "", false
		}
		parts := int(b[1])
		rest := b[2:]
		if len(rest) < 2*parts {
			return "", false
		}
		lens, rest := rest[:2*parts], rest[2*parts:]
		for i := 0; i < parts; i++ {
			l := int(binary.BigEndian.Uint16(lens[2*i:]))
			if l > len(rest) {
				return "", false
			}
			if from, ok := findSuspect(rest[:l], node, depth+1); ok {
				return from, true
			}
			rest = rest[l:]
		}
	case wireSuspect:
		if !bytes.Contains(b, []byte(node)) {
			return "", false
		}
		var s wireSuspectMsg
		if err := codec.NewDecoderBytes(b[1:], &codec.MsgpackHandle{}).Decode(&s); err == nil && s.Node == node {
			return s.From, true
		}
	}
	return "", false
}
