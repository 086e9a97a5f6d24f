package cluster

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Names on the wire.
//
// A session ID is "<node>-<incarnation>-<n>": the node's ID, the node's incarnation (the
// time its process created the Node, in base 36 milliseconds) and the process-wide
// session number. The node is everything before the first '-', so node IDs may not hold
// one, and routing needs no lookup. The incarnation keeps a restarted node from
// reusing the IDs of its previous life: a binding or an ID an application kept from
// before a crash never reaches a newer session with the same number.
//
// User IDs and room names are arbitrary strings (1 to MaxNameLen bytes). Where they
// become a KV key or a subject token they are kept as they are when made only of
// letters, digits, '_' and '-', and written "=" + base64url otherwise.

// MaxNameLen bounds user IDs, room names and request subjects, in bytes.
const MaxNameLen = 256

// maxNodeIDLen bounds node IDs.
const maxNodeIDLen = 32

// NodeOf returns the node part of a session ID made by a cluster node, and false when
// the ID has none.
func NodeOf(sessionID string) (string, bool) {
	i := strings.IndexByte(sessionID, '-')
	if i <= 0 {
		return "", false
	}
	return sessionID[:i], true
}

// checkNodeID checks a node ID: 1 to 32 letters, digits or '_'.
func checkNodeID(id string) error {
	if id == "" || len(id) > maxNodeIDLen {
		return fmt.Errorf("%w: node ID %q: want 1 to %d letters, digits or '_'", ErrBadName, id, maxNodeIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !isWordByte(id[i]) || id[i] == '-' {
			return fmt.Errorf("%w: node ID %q: only letters, digits and '_' (a '-' ends the node part of a session ID)", ErrBadName, id)
		}
	}
	return nil
}

// checkPrefix checks a subject prefix: dot-separated tokens of letters, digits, '_'
// and '-'.
func checkPrefix(p string) error {
	if p == "" || len(p) > 64 {
		return fmt.Errorf("%w: prefix %q: want 1 to 64 bytes", ErrBadName, p)
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return fmt.Errorf("%w: prefix %q has an empty token", ErrBadName, p)
		}
		for i := 0; i < len(tok); i++ {
			if !isWordByte(tok[i]) {
				return fmt.Errorf("%w: prefix %q: only letters, digits, '_', '-' and '.'", ErrBadName, p)
			}
		}
	}
	return nil
}

// checkName checks a user ID, room name or request subject.
func checkName(kind, name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s %q: want 1 to %d bytes", ErrBadName, kind, name, MaxNameLen)
	}
	return nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// token turns a name into a subject token or KV key: itself when made of letters,
// digits, '_' and '-'; otherwise "=" and its base64url (which never clashes, as '='
// is not a word byte).
func token(name string) string {
	for i := 0; i < len(name); i++ {
		if !isWordByte(name[i]) {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(name))
		}
	}
	return name
}

// incarnation names this life of a node: base-36 milliseconds since the Unix epoch.
func incarnation(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli(), 36)
}
