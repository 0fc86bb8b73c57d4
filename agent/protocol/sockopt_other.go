//go:build !linux

package protocol

import "syscall"

func bindNoPort(string, string, syscall.RawConn) error { return nil }
