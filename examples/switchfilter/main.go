// Command switchfilter is SuperSocketLite's SwitchReceiveFilter sample: two framings on
// one connection, the first byte of each request choosing the receive filter.
//
//	filter A:  'Y' text 0x00 0xFF     e.g. "YECHO hi\x00\xff"
//	filter B:  '*' text '#'           e.g. "*ADD 1 2#"
//
// The text inside is a command line: ECHO text, ADD n…, MULT n…. Each reply is framed
// like its request and says which filter framed it: "YA: hi\x00\xff", "*B: 3#". An
// unknown command gets "ERR unknown command: X" (same framing). A first byte that starts
// neither framing, or a frame over the request limit, closes the session with
// ProtocolError.
//
// filter.Switch does the choosing: a table from first byte to filter factory; each route's
// filter is made once per session and keeps the stream until it has framed a request.
//
//	go run ./examples/switchfilter               # serve on 127.0.0.1:5555
//	printf '*ADD 1 2#YECHO hi\0\377' | nc -q1 127.0.0.1 5555
//	go run ./examples/switchfilter -client       # one request of each framing
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const maxRequestLength = 1024 // a frame, marks included

// The two framings.
var (
	beginA, endA = []byte("Y"), []byte{0x00, 0xFF}
	beginB, endB = []byte("*"), []byte("#")
)

// switchFilter picks filter A or B from each request's first byte. The client uses it too,
// since replies are framed like requests.
func switchFilter() filter.Factory {
	return filter.Switch(map[byte]filter.Factory{
		beginA[0]: filter.BeginEndMark(beginA, endA),
		beginB[0]: filter.BeginEndMark(beginB, endB),
	})
}

// frame encloses text in the marks of the framing whose begin byte is first.
func frame(first byte, text string) []byte {
	begin, end := beginB, endB
	if first == beginA[0] {
		begin, end = beginA, endA
	}
	return slices.Concat(begin, []byte(text), end)
}

// run executes one command line.
func run(line string) string {
	key, rest, _ := strings.Cut(line, " ")
	switch strings.ToUpper(key) {
	case "ECHO":
		return rest
	case "ADD", "MULT":
		add := strings.EqualFold(key, "ADD")
		acc := int64(1)
		if add {
			acc = 0
		}
		for _, f := range strings.Fields(rest) {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return "ERR not a number: " + f
			}
			if add {
				acc += n
			} else {
				acc *= n
			}
		}
		return strconv.FormatInt(acc, 10)
	}
	return "ERR unknown command: " + key
}

func request(s *supersocket.Session[struct{}], req supersocket.Request) {
	// BeginEndMark sets Body to the text between the marks and Frame to the whole frame:
	// its first byte says which filter framed it.
	first := req.Frame[0]
	name := "B"
	if first == beginA[0] {
		name = "A"
	}
	s.Send(frame(first, name+": "+run(string(req.Body))))
}

// newServer returns the server, not started, listening on addr.
func newServer(addr string) (*supersocket.Server[struct{}], error) {
	return supersocket.New(supersocket.Config{
		Name:             "switchfilter",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           switchFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[struct{}]{Request: request})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address to listen on (with -client: the server's)")
	asClient := flag.Bool("client", false, "send requests of both framings on one connection and print the replies")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *addr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "switchfilter:", err)
			os.Exit(1)
		}
		return
	}
	srv, err := newServer(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchfilter:", err)
		os.Exit(2)
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "switchfilter:", err)
		os.Exit(1)
	}
}
