package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Requests reach a node's handler by subject; the errors are the documented ones.
func TestRequest_NodeToNode(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	b.Handle("upper", func(ctx context.Context, from string, p []byte) ([]byte, error) {
		return []byte(from + ":" + strings.ToUpper(string(p))), nil
	})
	b.Handle("fail", func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("no way") })
	b.Handle("panic", func(context.Context, string, []byte) ([]byte, error) { panic("boom") })
	b.Handle("slow", func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		<-ctx.Done() // ends when the caller gives up
		return nil, ctx.Err()
	})
	ctx := ctxT(t)
	if got, err := a.Request(ctx, "b", "upper", []byte("hi")); err != nil || string(got) != "a:HI" {
		t.Fatalf("Request = %q, %v", got, err)
	}
	if got, err := b.Request(ctx, "b", "upper", []byte("self")); err != nil || string(got) != "b:SELF" {
		t.Fatalf("Request to self = %q, %v", got, err)
	}
	var re *RemoteError
	if _, err := a.Request(ctx, "b", "fail", nil); !errors.As(err, &re) || re.Message != "no way" || re.Node != "b" {
		t.Fatalf("a failing handler: %v", err)
	}
	if _, err := a.Request(ctx, "b", "panic", nil); !errors.As(err, &re) || !strings.Contains(re.Message, "boom") {
		t.Fatalf("a panicking handler: %v", err)
	}
	if _, err := a.Request(ctx, "b", "none", nil); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("no handler: %v", err)
	}
	start := time.Now()
	if _, err := a.Request(ctx, "zz", "upper", nil); !errors.Is(err, ErrNodeGone) || time.Since(start) > time.Second {
		t.Fatalf("a node that does not exist: %v after %v", err, time.Since(start))
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	// The handler's context ends with the caller's: either side may report it first.
	if _, err := a.Request(short, "b", "slow", nil); !errors.Is(err, ErrTimeout) && !(errors.As(err, &re) && strings.Contains(re.Message, "deadline")) {
		t.Fatalf("a slow handler: %v", err)
	}
	b.Handle("upper", nil)
	if _, err := a.Request(ctx, "b", "upper", nil); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("removed handler: %v", err)
	}
	if st := a.ClusterStats(); st.RequestsOut == 0 {
		t.Fatalf("requests not counted: %+v", st)
	}
}

// Nodes lists the live nodes with their session counts; one that stops leaves the
// list at once.
func TestNodes_Heartbeats(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	dial(t, b)
	dial(t, b)
	eventually(t, 3*time.Second, "b seen with 2 sessions", func() bool {
		list := a.Nodes()
		return len(list) == 2 && list[0].ID == "a" && list[0].Self && list[1].ID == "b" && list[1].Sessions == 2 && !list[1].Self
	})
	if st := a.ClusterStats(); !st.Connected || st.Nodes != 2 {
		t.Fatalf("stats %+v", st)
	}
	start := time.Now()
	b.Stop()
	eventually(t, time.Second, "b gone", func() bool { return len(a.Nodes()) == 1 })
	t.Logf("a stopped node left the list after %v", time.Since(start).Round(time.Millisecond))
}
