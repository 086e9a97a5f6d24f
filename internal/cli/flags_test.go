package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		status     int
		ok         bool
		wantOutput string
	}{
		{[]string{"-n", "3", "rest"}, ExitOK, true, ""},
		{[]string{"-h"}, ExitOK, false, "usage"},
		{[]string{"-help"}, ExitOK, false, "usage"},
		{[]string{"-no-such-flag"}, ExitUsage, false, "no-such-flag"},
		{[]string{"-n", "x"}, ExitUsage, false, "invalid value"},
	} {
		var out bytes.Buffer
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(&out)
		fs.Usage = func() { out.WriteString("usage\n") }
		n := fs.Int("n", 0, "")
		status, ok := ParseFlags(fs, tc.args)
		if status != tc.status || ok != tc.ok {
			t.Errorf("%q: ParseFlags = %d, %v; want %d, %v", tc.args, status, ok, tc.status, tc.ok)
		}
		if !strings.Contains(out.String(), tc.wantOutput) {
			t.Errorf("%q: output %q lacks %q", tc.args, out.String(), tc.wantOutput)
		}
		if tc.ok && (*n != 3 || fs.Arg(0) != "rest") {
			t.Errorf("%q: parsed -n %d, args %q", tc.args, *n, fs.Args())
		}
	}
}
