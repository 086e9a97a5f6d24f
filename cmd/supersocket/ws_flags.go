package main

import (
	"errors"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket"
)

// wsFlags are the -ws-* flags: the WebSocket listeners of -mode ws.
type wsFlags struct {
	path        string
	origins     string
	compression bool
	ping        time.Duration
}

// wsFlagNames are the flags wsFlags defines.
var wsFlagNames = []string{"ws-path", "ws-origin", "ws-compression", "ws-ping-interval"}

// wsFlag names the flag behind a WebSocketConfig field.
var wsFlag = map[string]string{
	"Path":         "-ws-path",
	"Origins":      "-ws-origin",
	"Compression":  "-ws-compression",
	"PingInterval": "-ws-ping-interval",
	"PongTimeout":  "-ws-ping-interval",
	"":             "-ws-path",
}

// set reports whether one of the flags was given on the command line.
func (w *wsFlags) set(given map[string]bool) bool {
	for _, n := range wsFlagNames {
		if given[n] {
			return true
		}
	}
	return false
}

// config returns the WebSocket configuration the flags describe, or nil when the
// listeners are not WebSocket ones (ws false); setting one of the flags then is an error.
func (w *wsFlags) config(ws bool) (*supersocket.WebSocketConfig, error) {
	if !ws {
		if *w != (wsFlags{}) {
			return nil, errors.New("-ws-path, -ws-origin, -ws-compression and -ws-ping-interval need -mode ws")
		}
		return nil, nil
	}
	cfg := &supersocket.WebSocketConfig{Path: w.path, Compression: w.compression, PingInterval: w.ping}
	for o := range strings.SplitSeq(w.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.Origins = append(cfg.Origins, o)
		}
	}
	return cfg, nil
}
