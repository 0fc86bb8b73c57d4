package modelserver

import "syscall"

// sysProcAttr starts a server as the leader of its own process group, so
// that signals reach every process it spawns, and has the kernel SIGKILL it
// if the agent thread that started it dies. That thread is locked for the
// server's lifetime (see Server.run), as Pdeathsig follows the thread, not
// the process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
