package soak

import "testing"

// TestWithoutBroadcasts: a broadcast that reaches a bad-input connection before its cut
// is not an answer to the bad input (CI once failed on "NEWS 3\r\n"); anything else is.
func TestWithoutBroadcasts(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"NEWS 3\r\n", ""},
		{"NEWS 3\r\nNEWS 4\r\n", ""},
		{"NEWS 3\r\nhello\r\n", "hello\r\n"},
		{"hello\r\nNEWS 3\r\n", "hello\r\n"},
		{"NEWS 3", "NEWS 3"}, // cut short: not a whole broadcast line
		{"NEWSPAPER\r\n", "NEWSPAPER\r\n"},
		{"plaintext", "plaintext"},
	} {
		if got := string(withoutBroadcasts([]byte(c.in))); got != c.want {
			t.Errorf("withoutBroadcasts(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
