package protocol

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h).
const ipBindAddressNoPort = 24

// bindNoPort defers the choice of the source port from bind to connect,
// so a bound source address shares its ports across destinations.
func bindNoPort(network, _ string, c syscall.RawConn) error {
	if network != "tcp4" && network != "tcp" {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	_ = serr // older kernels lack the option: bind then picks the port
	return nil
}
