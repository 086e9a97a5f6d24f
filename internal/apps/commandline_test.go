package apps

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// converse starts the commandline app on loopback, writes input in one go and returns
// everything the server sends until it closes the session (input should end with QUIT).
func converse(t *testing.T, input string) string {
	t.Helper()
	srv, err := CommandLine(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	c, err := net.DialTimeout("tcp", srv.Addrs()[0].String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, input); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	return string(got)
}

// TestCommandLineWireBehaviour pins the app's replies, including the corners the CLI's
// own test does not reach, so the move onto command.Router changed nothing on the wire.
func TestCommandLineWireBehaviour(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"echo", "ECHO hello  world \r\necho\r\nEcHo a\tb\n", "hello  world \r\n\r\na\tb\r\n"},
		{"echo-key-only-space", "ECHO \r\n", "\r\n"},
		{"add", "ADD 1 2 3\r\nadd -5\r\nAdd 1\t2\r\nADD  7   8 \r\n", "6\r\n-5\r\n3\r\n15\r\n"},
		{"mult", "MULT -4 5\r\nmult 0 9223372036854775807\r\nMULT 3\r\n", "-20\r\n0\r\n3\r\n"},
		{"overflow", "ADD 9223372036854775807 1\r\nADD -9223372036854775808 -1\r\n" +
			"MULT 4611686018427387904 2\r\nMULT -1 -9223372036854775808\r\nADD 99999999999999999999\r\n",
			"ERR integer overflow\r\nERR integer overflow\r\nERR integer overflow\r\nERR integer overflow\r\nERR integer overflow\r\n"},
		{"bad-numbers", "ADD 1 x\r\nMULT 2 3.5\r\nADD\r\nMULT \r\n",
			"ERR not an integer: \"x\"\r\nERR not an integer: \"3.5\"\r\nERR expected at least one integer\r\nERR expected at least one integer\r\n"},
		{"unknown", "FOO x\r\nfoo\r\nÉCHO\r\n", "ERR unknown command: FOO\r\nERR unknown command: foo\r\nERR unknown command: ÉCHO\r\n"},
		{"blank", "\r\n\n \r\n  ECHO x\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := converse(t, tc.in+"QUIT\r\nECHO never\r\n"); got != tc.want+"BYE\r\n" {
				t.Fatalf("replies:\n got %q\nwant %q", got, tc.want+"BYE\r\n")
			}
		})
	}
	if got := converse(t, "quit\r\nECHO never\r\n"); got != "BYE\r\n" {
		t.Fatalf("lower-case quit: %q", got)
	}
}
