package main

// The cluster flags and the config file's cluster: block. A process is at most one
// node: the one server of a cluster-aware app (chat) joins the cluster, through a NATS
// URL (-cluster) or an embedded NATS server the process runs itself (-cluster-listen,
// with JetStream, its data in -cluster-store or a temporary folder). With neither,
// nothing changes.

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/cluster/natsd"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// clusterFlags are the process-wide cluster settings, from flags or the file's block.
type clusterFlags struct {
	NodeID            string        `yaml:"node_id"`
	URL               string        `yaml:"url"`
	Listen            string        `yaml:"listen"`
	Store             string        `yaml:"store"`
	UserTTL           durationValue `yaml:"user_ttl"`
	HeartbeatInterval durationValue `yaml:"heartbeat_interval"`
}

// clusterFlagNames are the flags of clusterFlags, global like -metrics-addr.
var clusterFlagNames = []string{"node-id", "cluster", "cluster-listen", "cluster-store", "cluster-user-ttl", "cluster-heartbeat"}

func (c *clusterFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "join a cluster as this node (letters, digits, '_'); needs -cluster or -cluster-listen")
	fs.StringVar(&c.URL, "cluster", c.URL, "NATS `url` of the cluster to join (nats://host:port)")
	fs.StringVar(&c.Listen, "cluster-listen", c.Listen, "run an embedded NATS server (JetStream) on `host:port` and join through it")
	fs.StringVar(&c.Store, "cluster-store", c.Store, "the embedded NATS server's data `dir` (default: a temporary folder)")
	fs.Func("cluster-user-ttl", "how long a crashed node's users stay bound (default 15s)", durationFlag(&c.UserTTL))
	fs.Func("cluster-heartbeat", "node heartbeat interval; a node silent 3 intervals is gone (default 1s)", durationFlag(&c.HeartbeatInterval))
}

func durationFlag(v *durationValue) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 5s)", s)
		}
		*v = durationValue(d)
		return nil
	}
}

// overlay sets the fields the command line set over the file's.
func (c clusterFlags) overlay(flags clusterFlags, set map[string]bool) clusterFlags {
	if set["node-id"] {
		c.NodeID = flags.NodeID
	}
	if set["cluster"] {
		c.URL = flags.URL
	}
	if set["cluster-listen"] {
		c.Listen = flags.Listen
	}
	if set["cluster-store"] {
		c.Store = flags.Store
	}
	if set["cluster-user-ttl"] {
		c.UserTTL = flags.UserTTL
	}
	if set["cluster-heartbeat"] {
		c.HeartbeatInterval = flags.HeartbeatInterval
	}
	return c
}

// enabled reports whether any cluster setting is given.
func (c clusterFlags) enabled() bool {
	return c.NodeID != "" || c.URL != "" || c.Listen != "" || c.Store != "" || c.UserTTL != 0 || c.HeartbeatInterval != 0
}

// check validates the settings; errors name the flag.
func (c clusterFlags) check() error {
	switch {
	case c.NodeID == "":
		return errors.New("-node-id: a node ID is required with -cluster or -cluster-listen")
	case c.URL == "" && c.Listen == "":
		return errors.New("-node-id: give -cluster nats://HOST:PORT to join a cluster, or -cluster-listen HOST:PORT to run its NATS server")
	case c.URL != "" && c.Listen != "":
		return errors.New("-cluster and -cluster-listen: give one (a node with -cluster-listen joins through its own NATS server)")
	case c.Store != "" && c.Listen == "":
		return errors.New("-cluster-store: only with -cluster-listen")
	case c.UserTTL < 0:
		return errors.New("-cluster-user-ttl: must not be negative")
	case c.HeartbeatInterval < 0:
		return errors.New("-cluster-heartbeat: must not be negative")
	}
	if err := (cluster.Config{NodeID: c.NodeID, URL: "nats://x"}).Validate(); err != nil {
		return fmt.Errorf("-node-id: %w", err)
	}
	if c.URL != "" {
		for u := range strings.SplitSeq(c.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
				return fmt.Errorf("-cluster: %q is not a NATS URL (nats://host:port)", u)
			}
		}
	}
	if c.Listen != "" {
		if err := checkHostPort(c.Listen); err != nil {
			return fmt.Errorf("-cluster-listen: %w", err)
		}
	}
	if err := (cluster.Config{NodeID: c.NodeID, URL: "nats://x", UserTTL: time.Duration(c.UserTTL), HeartbeatInterval: time.Duration(c.HeartbeatInterval)}).Validate(); err != nil {
		return fmt.Errorf("-cluster-user-ttl: %w", err)
	}
	return nil
}

// assign picks the one server that joins: the file or flags must declare exactly one
// server of a cluster-aware app. It returns its index.
func assignNode(specs []serverSpec) (int, error) {
	node := -1
	for i, s := range specs {
		if _, err := apps.LookupCluster(s.app); err != nil {
			continue
		}
		if node >= 0 {
			return 0, fmt.Errorf("-node-id: servers %q and %q are both cluster-aware (%s); a process is one node", specs[node].cfg.Name, s.cfg.Name, s.app)
		}
		node = i
	}
	if node < 0 {
		_, err := apps.LookupCluster(specs[0].app)
		return 0, fmt.Errorf("-node-id: %w", err)
	}
	return node, nil
}

// startEmbeddedNATS runs the embedded NATS server of -cluster-listen.
func startEmbeddedNATS(c clusterFlags, log *slog.Logger) (*natsd.Server, error) {
	ns, err := natsd.Start(natsd.Options{Addr: c.Listen, StoreDir: c.Store})
	if err != nil {
		return nil, err
	}
	store := c.Store
	if store == "" {
		store = "(temporary)"
	}
	log.Info("embedded NATS listening", "url", ns.ClientURL(), "store", store)
	return ns, nil
}

// config is the node's cluster.Config, joining through url.
func (c clusterFlags) config(url string, log *slog.Logger) cluster.Config {
	return cluster.Config{
		NodeID:            c.NodeID,
		URL:               url,
		UserTTL:           time.Duration(c.UserTTL),
		HeartbeatInterval: time.Duration(c.HeartbeatInterval),
		Logger:            log,
	}
}
