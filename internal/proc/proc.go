// Package proc reads what a process has used — CPU time, resident memory, system calls,
// open files — from Linux's /proc file system. Every function fails where /proc is not
// mounted or the process is gone.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// CPU returns the CPU time (user + system) process pid has used so far, from
// /proc/PID/stat. Its resolution is one clock tick (10 ms).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(ut+st) * (time.Second / clockTicks), nil
}

// RSS returns the resident set size of process pid in bytes, from VmRSS in
// /proc/PID/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

func parseVmRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("/proc status: no VmRSS line")
}

// IO is a process's read and write system calls so far, from /proc/PID/io (syscr,
// syscw: read, readv, pread… and write, writev, pwrite…, sockets included).
type IO struct{ Reads, Writes uint64 }

// ReadIO returns the system calls process pid has made so far, from /proc/PID/io.
// Reading another user's process needs the right to trace it.
func ReadIO(pid int) (IO, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return IO{}, err
	}
	return parseIO(b)
}

func parseIO(b []byte) (IO, error) {
	var io IO
	found := 0
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "syscr":
			dst = &io.Reads
		case "syscw":
			dst = &io.Writes
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return IO{}, fmt.Errorf("/proc io %s: %w", k, err)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return IO{}, errors.New("/proc io: no syscr and syscw lines")
	}
	return io, nil
}

// OpenFiles returns how many file descriptors process pid has open: the entries of
// /proc/PID/fd.
func OpenFiles(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}
