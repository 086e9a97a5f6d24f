package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// runClient shows the session before and after the upgrade, with the client package:
// Conn.StartTLS sends STARTTLS and, on the go-ahead, runs the handshake on the same
// connection before it reads another byte.
func runClient(ctx context.Context, addr string, cfg *tls.Config, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr, Filter: filter.CommandLine()})
	if err != nil {
		return err
	}
	defer c.Close()
	show := func(line string) error {
		m, err := c.Request(ctx, []byte(line+"\r\n"))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-8s → %s\n", line, strings.TrimRight(string(m.Frame), "\r\n"))
		return nil
	}
	for _, line := range []string{"WHOAMI", "SECRET"} {
		if err := show(line); err != nil {
			return err
		}
	}
	goAhead := func(m client.Message) bool { return string(m.Frame) == "OK begin TLS\r\n" }
	if _, err := c.StartTLS(ctx, cfg, goAhead, []byte("STARTTLS\r\n")); err != nil {
		return err
	}
	st := c.TLS()
	fmt.Fprintf(out, "STARTTLS → %s %s\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	for _, line := range []string{"WHOAMI", "SECRET", "QUIT"} {
		if err := show(line); err != nil {
			return err
		}
	}
	return nil
}
