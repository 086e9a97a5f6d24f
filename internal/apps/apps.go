// Package apps holds the servers the supersocket CLI can run by name.
package apps

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/supersocket-go/supersocket"
)

// Server is what the CLI needs of a running app: every *supersocket.Server[T] is one.
type Server interface {
	Start() error
	Serve(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Stop() error
	ReloadTLS() error
	Addrs() []net.Addr
	Stats() supersocket.Stats
	State() supersocket.ServerState
	Config() supersocket.Config
}

// App makes a server from a configuration. An app sets its own receive filter.
type App func(cfg supersocket.Config) (Server, error)

var apps = map[string]App{
	"commandline": CommandLine,
	"echo":        Echo,
}

// Lookup returns the app called name.
func Lookup(name string) (App, error) {
	if app, ok := apps[name]; ok {
		return app, nil
	}
	return nil, fmt.Errorf("unknown app %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the apps, sorted.
func Names() []string {
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
