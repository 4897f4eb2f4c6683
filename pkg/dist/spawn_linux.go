package dist

import "syscall"

// Workers die with the launcher, so a killed launcher leaves no orphans holding ports.
func workerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
