package faultnet

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func listen(t *testing.T, n *Net) raft.StreamLayer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return n.Wrap(&TCPLayer{Listener: ln})
}

// echo accepts connections on l and echoes what they send.
func echo(l raft.StreamLayer) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
}

func roundTrip(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

func TestPartitionRefusesDialsAndSeversOpenConnections(t *testing.T) {
	n := New()
	a, b := listen(t, n), listen(t, n)
	echo(b)
	c, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "hello"); err != nil {
		t.Fatalf("healthy link: %v", err)
	}
	n.Partition([]string{a.Addr().String()}, []string{b.Addr().String()})
	if err := roundTrip(c, "again"); err == nil {
		t.Fatal("traffic crossed a partition")
	}
	if _, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second); !errors.Is(err, ErrCut) {
		t.Fatalf("dial across a partition: %v", err)
	}
	if s := n.Stats(); s.DialsRefused != 1 || s.ConnsCut == 0 {
		t.Fatalf("stats = %+v", s)
	}
	n.Heal()
	c2, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
	defer c2.Close()
	if err := roundTrip(c2, "healed"); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestOneWayCutDropsOnlyOneDirection(t *testing.T) {
	n := New()
	a, b := listen(t, n), listen(t, n)
	echo(a)
	echo(b)
	n.CutOneWay(a.Addr().String(), b.Addr().String())
	if _, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second); err == nil {
		t.Fatal("a reached b over a cut direction")
	}
	// b may dial a, but a's replies to b are cut too: the connection fails.
	c, err := b.Dial(raft.ServerAddress(a.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("b -> a: %v", err)
	}
	defer c.Close()
	if err := roundTrip(c, "x"); err == nil {
		t.Fatal("reply crossed the cut direction")
	}
}

func TestStallHoldsTrafficUntilResume(t *testing.T) {
	n := New()
	a, b := listen(t, n), listen(t, n)
	echo(b)
	c, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.Stall(b.Addr().String())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- roundTrip(c, "held") }()
	select {
	case err := <-done:
		t.Fatalf("traffic passed a stalled node: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	n.Resume(b.Addr().String())
	if err := <-done; err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("stall did not hold traffic")
	}
	// A deadline still ends a stalled read.
	n.Stall(b.Addr().String())
	_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write to a stalled node finished before its deadline")
	}
	n.Heal()
}

func TestDelayAddsLatency(t *testing.T) {
	n := New()
	a, b := listen(t, n), listen(t, n)
	echo(b)
	c, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.Delay(a.Addr().String(), 50*time.Millisecond, 0)
	start := time.Now()
	if err := roundTrip(c, "slow"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("round trip took %s, want at least the 50ms delay", d)
	}
}

// TCPLayer is a plain TCP raft.StreamLayer to wrap in tests.
type TCPLayer struct {
	net.Listener
	Advertise net.Addr
}

// Addr is the advertised address when one is set.
func (l *TCPLayer) Addr() net.Addr {
	if l.Advertise != nil {
		return l.Advertise
	}
	return l.Listener.Addr()
}

// Dial opens a TCP connection.
func (l *TCPLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
