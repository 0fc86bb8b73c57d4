package protocol

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// newDialer returns the dial function of both HTTP transports. With
// cfg.LocalAddrs it spreads connections round-robin over those source
// addresses, binding each socket to its address but leaving the port to
// connect (IP_BIND_ADDRESS_NO_PORT on Linux): a source address gives one
// ephemeral port range (about 28k ports by default) per destination, so
// more than that many connections to one server need several of them
// (127.0.0.x on loopback).
func newDialer(cfg Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	base := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if len(cfg.LocalAddrs) == 0 {
		return base.DialContext
	}
	dialers := make([]*net.Dialer, 0, len(cfg.LocalAddrs))
	for _, s := range cfg.LocalAddrs {
		ip := net.ParseIP(s)
		if ip == nil {
			err := fmt.Errorf("protocol: bad local address %q", s)
			return func(context.Context, string, string) (net.Conn, error) { return nil, err }
		}
		d := base
		d.LocalAddr = &net.TCPAddr{IP: ip}
		d.Control = bindNoPort
		dialers = append(dialers, &d)
	}
	var next atomic.Uint64
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := dialers[(next.Add(1)-1)%uint64(len(dialers))]
		return d.DialContext(ctx, network, addr)
	}
}
