//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// socketFile returns a duplicate of c's socket as a file to hold for a hand-over. Not
// net's File: exec.Cmd takes each of ExtraFiles' descriptors with Fd, and Fd on a file
// from net's File switches the socket to blocking mode — a mode every descriptor of the
// socket shares, this process's listeners included, whose accept would then block in
// the kernel where closing the listener cannot end it (a drain would never return). A
// file made by os.NewFile from a non-blocking descriptor stays non-blocking.
func socketFile(c syscall.Conn, name string) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock() // no exec between the dup and close-on-exec
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// restartSignal returns the channel of SIGUSR2, the hand-over's signal, caught from now on
// (its default action would end the process), and the function that stops catching it.
func restartSignal() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	return c, func() { signal.Stop(c) }
}
