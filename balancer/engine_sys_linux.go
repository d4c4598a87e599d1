package balancer

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop's sockets are non-blocking, so its reads, writes and
// readiness polls without a timeout return at once. They are made as raw
// system calls, which skip the Go scheduler's bookkeeping around a call that
// might block (entersyscall/exitsyscall, and a processor handed to another
// thread when the call lasts over 20 µs). Only the loop's blocking wait goes
// through unix.EpollWait.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) { return rawRW(unix.SYS_READ, fd, p) }

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) { return rawRW(unix.SYS_WRITE, fd, p) }

// rawRW makes the read or write system call trap on fd with buffer p.
func rawRW(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// epollPoll returns the events ready now, without waiting.
func epollPoll(ep int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
