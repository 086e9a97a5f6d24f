package soak

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// echoPacketUDP builds an echo-app packet.
func echoPacketUDP(id uint16, body []byte) []byte {
	p := binary.LittleEndian.AppendUint16(nil, uint16(apps.EchoHeaderSize+len(body)))
	p = binary.LittleEndian.AppendUint16(p, id)
	return append(append(p, 0), body...)
}

// udpClient makes echo round trips over UDP, matched by packet id, and moves to a new
// socket (a new session) every 500 round trips; the old session expires.
func (r *runner) udpClient(ctx context.Context, id int, period time.Duration) {
	tick := newPacer(period)
	if tick != nil {
		defer tick.Stop()
	}
	rng := mrand.New(mrand.NewPCG(uint64(id), 7))
	var c *client.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var pid uint16
	for n := 0; pace(ctx, tick); n++ {
		if c == nil || n%500 == 0 {
			if c != nil {
				c.Close()
			}
			var err error
			c, err = client.Dial(ctx, client.Config{
				Network: "udp",
				Addr:    r.udpAddr,
				Filter:  apps.EchoFilter(),
				ReplyID: func(m client.Message) (uint64, bool) {
					return uint64(binary.LittleEndian.Uint16(m.Header[2:4])), true
				},
				Logger: r.log,
			})
			if err != nil {
				c = nil
				r.errs.addWhileLoading(ctx, "udp dial", err)
				return
			}
		}
		pid++
		body := strconv.AppendUint(nil, rng.Uint64(), 36)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := c.RequestID(rctx, uint64(pid), echoPacketUDP(pid, body))
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			r.udpLost.Add(1)
		case err != nil:
			r.errs.add("udp request", err)
			return
		case !bytes.Equal(m.Body, body):
			r.errs.add("udp request", fmt.Errorf("echo of %q came back as %q", body, m.Body))
		default:
			r.requests.Add(1)
			r.udpReqs.Add(1)
		}
	}
}
