// Package browsertest runs headless Chromium, driven by chromedp, for the tests that need
// a real browser: the root package's WebSocket test and examples/webchat's.
//
// Without Chromium a test skips, saying how to install it; where a browser is required (CI
// set to a true value, or SUPERSOCKET_REQUIRE_BROWSER=1, as .ci/run does) it fails.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Chromium, or skips t — or fails it where a browser is
// required.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "Chromium not found; install chromium: apt-get install chromium (Debian; apt-get update first), to run the browser tests"
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	if ci || os.Getenv("SUPERSOCKET_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; a browser is required here (CI or SUPERSOCKET_REQUIRE_BROWSER=1 is set)")
	}
	t.Skip(msg)
	return ""
}

// Start starts headless Chromium with a new profile and returns a chromedp context for its
// first tab; chromedp.NewContext on it opens another tab of the same browser. Everything
// is bounded by limit. When the test ends, the browser is closed and waited for — its
// process and chromedp's goroutines are gone, for goleak — and if the test failed,
// Chromium's output and chromedp's errors are logged. It skips or fails t as Chromium
// does when there is no browser.
func Start(t testing.TB, limit time.Duration) context.Context {
	t.Helper()
	chrome := Chromium(t)
	// Chromium's output and chromedp's errors, for a failed test's log. An *os.File takes
	// concurrent writes.
	out, err := os.CreateTemp(t.TempDir(), "chromium-*.log")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(func(f string, args ...any) {
		fmt.Fprintf(out, "chromedp: "+f+"\n", args...)
	}))
	t.Cleanup(func() {
		// A graceful close, bounded; then the contexts' cancel functions wait for the
		// tab, the process and the allocator's goroutines.
		closing, cancelClosing := context.WithTimeout(browser, 10*time.Second)
		if err := chromedp.Cancel(closing); err != nil {
			t.Logf("closing the browser: %v", err)
		}
		cancelClosing()
		cancelBrowser()
		cancelAlloc()
		cancel()
		if t.Failed() {
			log, _ := os.ReadFile(out.Name())
			t.Logf("chromium's output and chromedp's errors:\n%s", log)
		}
		out.Close()
	})
	// Start the browser and open its first tab now, so that a browser that cannot start
	// fails here.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	return browser
}
