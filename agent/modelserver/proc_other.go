//go:build unix && !linux

package modelserver

import "syscall"

// sysProcAttr starts a server as the leader of its own process group, so
// that signals reach every process it spawns. Pdeathsig is Linux-only; on
// other systems Manager.StopAll is the only cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
