package loadgen

import (
	"fmt"
	"io"
	"os"
	"time"
)

// startProgress prints a live progress line to stderr, when it is a terminal or
// -progress is set, until the returned function is called.
func startProgress(o *options, lcs []*loadConn, r *loadRun, stderr io.Writer) (stop func()) {
	var last int64
	lastAt := time.Now()
	return progressLine(o, stderr, func(now time.Time) string {
		var total int64
		for _, lc := range lcs {
			total += lc.counted.Load()
		}
		rate := float64(total-last) / now.Sub(lastAt).Seconds()
		last, lastAt = total, now
		state := "measuring"
		if !r.recording.Load() {
			state = "warming up"
		} else if r.stopping.Load() {
			state = "draining"
		}
		return fmt.Sprintf("%6.1fs  %-10s %14s msgs  %12s msgs/s", time.Since(r.base).Seconds(), state, group(total), group(int64(rate)))
	})
}

// progressLine rewrites one line of stderr every half second with line's text, when
// stderr is a terminal or -progress is set, until the returned function is called; it
// then clears the line.
func progressLine(o *options, stderr io.Writer, line func(now time.Time) string) (stop func()) {
	if !o.progress && !isTerminal(stderr) {
		return func() {}
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(stderr, "\r\033[K")
				return
			case now := <-t.C:
				fmt.Fprint(stderr, "\r\033[K"+line(now))
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
