// Package apps holds the servers the supersocket CLI can run by name.
package apps

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
)

// Server is what the CLI needs of a running app: every *supersocket.Server[T] is one.
type Server interface {
	Start() error
	Serve(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Drain(ctx context.Context) error
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
	"chat":        Chat,
}

// ClusterApp makes a server that is a node of a cluster.
type ClusterApp func(cfg supersocket.Config, cc cluster.Config) (Server, error)

// clustered are the apps that can join a cluster (-node-id, -cluster…).
var clustered = map[string]ClusterApp{
	"chat": ChatCluster,
}

// LookupCluster returns the cluster-aware variant of the app called name, or an error
// saying the app cannot join a cluster.
func LookupCluster(name string) (ClusterApp, error) {
	if app, ok := clustered[name]; ok {
		return app, nil
	}
	if _, err := Lookup(name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("app %q cannot join a cluster (cluster-aware: %s)", name, strings.Join(slices.Sorted(maps.Keys(clustered)), ", "))
}

// lineApps are the apps whose protocol is text lines meant for people (nc, a browser):
// over WebSocket they speak text messages, one line each (WebSocketConfig Text and
// Lines).
var lineApps = map[string]bool{"commandline": true, "chat": true}

// SpeaksLines reports whether the app called name speaks text lines to people.
func SpeaksLines(name string) bool { return lineApps[name] }

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
