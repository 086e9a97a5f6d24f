package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the node's cluster counters, updated with atomics.
type counters struct {
	msgsIn, msgsOut                           atomic.Uint64
	errors                                    atomic.Uint64
	localSends, remoteSends, remoteSendErrors atomic.Uint64
	remotePosts, postsUndelivered             atomic.Uint64
	kicks, publishes                          atomic.Uint64
	requestsIn, requestsOut                   atomic.Uint64
	disconnects, reconnects                   atomic.Uint64
	nodesDown                                 atomic.Uint64
}

// Stats is a snapshot of a node's cluster counters. Counters only grow.
type Stats struct {
	Connected        bool   // the node is joined and NATS is connected
	Nodes            int    // live nodes, this one included (see Nodes)
	Users            int    // users bound to this node's sessions
	Rooms            int    // rooms with members among this node's sessions
	MessagesIn       uint64 // cluster messages received from NATS
	MessagesOut      uint64 // cluster messages published to NATS
	Errors           uint64 // malformed messages, failed publishes and KV writes
	LocalSends       uint64 // SendTo calls for a session of this node
	RemoteSends      uint64 // SendTo calls for a session of another node
	RemoteSendErrors uint64 // those that failed (no session, node gone, queue full, timeout…)
	RemotePosts      uint64 // Post calls for a session of another node
	PostsUndelivered uint64 // posts from other nodes that found no session, or a full or closing one
	Kicks            uint64 // sessions kicked for their user (Bind, KickUser, lost bindings)
	Publishes        uint64 // Publish calls
	RequestsIn       uint64 // node-to-node requests received
	RequestsOut      uint64 // node-to-node requests made
	Disconnects      uint64 // times NATS was lost
	Reconnects       uint64 // times it came back
	NodesDown        uint64 // other nodes found gone without leaving (see Handlers.NodeDown)
}

// ClusterStats returns a snapshot of the node's cluster counters (Stats, of the
// embedded server, has the server's). Safe from any goroutine.
func (n *Node[T]) ClusterStats() Stats {
	n.mu.RLock()
	users, rooms := len(n.users), len(n.rooms)
	n.mu.RUnlock()
	l := n.link.Load()
	c := &n.stats
	return Stats{
		Connected:        l != nil && l.connected(),
		Nodes:            len(n.Nodes()),
		Users:            users,
		Rooms:            rooms,
		MessagesIn:       c.msgsIn.Load(),
		MessagesOut:      c.msgsOut.Load(),
		Errors:           c.errors.Load(),
		LocalSends:       c.localSends.Load(),
		RemoteSends:      c.remoteSends.Load(),
		RemoteSendErrors: c.remoteSendErrors.Load(),
		RemotePosts:      c.remotePosts.Load(),
		PostsUndelivered: c.postsUndelivered.Load(),
		Kicks:            c.kicks.Load(),
		Publishes:        c.publishes.Load(),
		RequestsIn:       c.requestsIn.Load(),
		RequestsOut:      c.requestsOut.Load(),
		Disconnects:      c.disconnects.Load(),
		Reconnects:       c.reconnects.Load(),
		NodesDown:        c.nodesDown.Load(),
	}
}

// Collector is a prometheus.Collector of one node's cluster counters, read at scrape
// time from a Stats snapshot, like metrics.Collector does for a server. Every metric
// is prefixed "supersocket_cluster_" and labelled with the server's name and the node:
//
//	connected                 gauge    1 while joined and connected to NATS
//	nodes                     gauge    live nodes, this one included
//	users                     gauge    users bound to this node's sessions
//	rooms                     gauge    rooms with members on this node
//	messages_total{dir}       counter  cluster messages in / out
//	errors_total              counter  malformed messages, failed publishes and KV writes
//	sends_total{target}       counter  SendTo calls, local / remote
//	remote_send_errors_total  counter  remote SendTo calls that failed
//	remote_posts_total        counter  Post calls for a session of another node
//	posts_undelivered_total   counter  posts from other nodes that could not be queued
//	kicks_total               counter  sessions kicked for their user
//	publishes_total           counter  room publishes
//	requests_total{dir}       counter  node-to-node requests in / out
//	disconnects_total         counter  times NATS was lost
//	reconnects_total          counter  times it came back
//	nodes_down_total          counter  other nodes found gone without leaving
//
// Safe from any goroutine.
type Collector struct {
	stats                                              func() Stats
	connected, nodes, users, rooms                     *prometheus.Desc
	messages, errors, sends, remoteErrors, kicks, pubs *prometheus.Desc
	posts, postsUndelivered                            *prometheus.Desc
	requests, disconnects, reconnects, nodesDown       *prometheus.Desc
}

// NewCollector returns a collector of the node whose server is called server and whose
// ID is node, reading its counters with stats (usually the node's ClusterStats).
func NewCollector(server, node string, stats func() Stats) *Collector {
	labels := prometheus.Labels{"server": server, "node": node}
	desc := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc("supersocket_cluster_"+name, help, variable, labels)
	}
	return &Collector{
		stats:        stats,
		connected:    desc("connected", "1 while the node is joined and connected to NATS, else 0."),
		nodes:        desc("nodes", "Live nodes of the cluster, this one included."),
		users:        desc("users", "Users bound to this node's sessions."),
		rooms:        desc("rooms", "Rooms with members among this node's sessions."),
		messages:     desc("messages_total", "Cluster messages received from (in) or published to (out) NATS.", "dir"),
		errors:       desc("errors_total", "Malformed cluster messages, failed publishes and KV writes."),
		sends:        desc("sends_total", "SendTo calls, for a session of this node (local) or of another (remote).", "target"),
		remoteErrors: desc("remote_send_errors_total", "Remote SendTo calls that failed."),
		posts:        desc("remote_posts_total", "Post calls for a session of another node."),
		postsUndelivered: desc("posts_undelivered_total",
			"Posts from other nodes that found no session, or a full or closing one."),
		kicks:       desc("kicks_total", "Sessions kicked for their user."),
		pubs:        desc("publishes_total", "Room publishes."),
		requests:    desc("requests_total", "Node-to-node requests received (in) or made (out).", "dir"),
		disconnects: desc("disconnects_total", "Times the node lost NATS."),
		reconnects:  desc("reconnects_total", "Times NATS came back."),
		nodesDown: desc("nodes_down_total",
			"Other nodes found gone without leaving: no heartbeat within NodeTimeout, or a new incarnation."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.nodes, c.users, c.rooms, c.messages, c.errors,
		c.sends, c.remoteErrors, c.posts, c.postsUndelivered, c.kicks, c.pubs, c.requests, c.disconnects, c.reconnects, c.nodesDown} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one snapshot, reported as it is.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	gauge(c.connected, connected)
	gauge(c.nodes, float64(st.Nodes))
	gauge(c.users, float64(st.Users))
	gauge(c.rooms, float64(st.Rooms))
	counter(c.messages, st.MessagesIn, "in")
	counter(c.messages, st.MessagesOut, "out")
	counter(c.errors, st.Errors)
	counter(c.sends, st.LocalSends, "local")
	counter(c.sends, st.RemoteSends, "remote")
	counter(c.remoteErrors, st.RemoteSendErrors)
	counter(c.posts, st.RemotePosts)
	counter(c.postsUndelivered, st.PostsUndelivered)
	counter(c.kicks, st.Kicks)
	counter(c.pubs, st.Publishes)
	counter(c.requests, st.RequestsIn, "in")
	counter(c.requests, st.RequestsOut, "out")
	counter(c.disconnects, st.Disconnects)
	counter(c.reconnects, st.Reconnects)
	counter(c.nodesDown, st.NodesDown)
}
