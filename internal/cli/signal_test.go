//go:build unix

package cli

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestSignalled sends this process SIGINT, then SIGTERM: the first ends the context, the
// second arrives on the channel.
func TestSignalled(t *testing.T) {
	ctx, again, release := Signalled(context.Background())
	defer release()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context did not end at SIGINT")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-again:
		if s != syscall.SIGTERM {
			t.Errorf("second signal %v, want SIGTERM", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not arrive")
	}
}

// TestSignalledRelease: release ends the context without a signal.
func TestSignalledRelease(t *testing.T) {
	ctx, _, release := Signalled(context.Background())
	release()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("release did not end the context")
	}
}
