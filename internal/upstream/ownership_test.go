package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bodies"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// TestTransportHoldsTheBodyUntilItIsDone: an EL may answer before it has read the request
// (geth refuses a bad token, or a body over its limit, from the headers alone), and the HTTP
// transport then goes on writing the body after the lane has its answer. The body must not
// go back to the pool, to be poisoned or reused for another request, until the transport has
// let go of it: the EL reads only the bytes that were sent. (Under -race, the detector also
// sees the pool poison a buffer the transport is still writing from.)
func TestTransportHoldsTheBodyUntilItIsDone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	released := make(chan struct{})
	type seen struct {
		n, poisoned int
		err         error
	}
	got := make(chan seen, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- seen{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		tr := textproto.NewReader(br)
		if _, err := tr.ReadLine(); err != nil {
			got <- seen{err: err}
			return
		}
		h, err := tr.ReadMIMEHeader()
		if err != nil {
			got <- seen{err: err}
			return
		}
		size, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			got <- seen{err: fmt.Errorf("content length %q: %w", h.Get("Content-Length"), err)}
			return
		}
		// Refuse at once, as geth does for a bad token, without reading the body.
		const why = "missing token"
		if _, err := fmt.Fprintf(conn, "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(why), why); err != nil {
			got <- seen{err: err}
			return
		}
		<-released
		var s seen
		buf := make([]byte, 64<<10)
		for s.n < size {
			k, err := br.Read(buf)
			s.n += k
			s.poisoned += bytes.Count(buf[:k], []byte{bodies.Poison})
			if err != nil {
				break // the transport may close the connection once it gave up on the body
			}
		}
		got <- s
	}()

	pool := bodies.NewPool(true)
	const size = 16 << 20 // more than loopback's socket buffers hold
	body := pool.Get(size)
	n := copy(body, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	for i := n; i < len(body); i++ {
		body[i] = ' '
	}
	req, err := engine.Inspect(body)
	if err != nil {
		t.Fatal(err)
	}
	d := &Delivery{Req: req, Body: body, BN: "bn1", Received: time.Now()}
	d.Own(pool)

	l := startLane(t, Config{Name: "el", URL: "http://" + ln.Addr().String()})
	res := l.Call(context.Background(), d)
	var de *DeliveryError
	if !errors.As(res.Err, &de) || de.Status != http.StatusUnauthorized {
		t.Fatalf("answer %v, want the EL's 401", res.Err)
	}
	d.Release() // the caller is done with it; only the transport may still hold it
	close(released)

	s := <-got
	if s.err != nil {
		t.Fatal(s.err)
	}
	if s.poisoned != 0 {
		t.Fatalf("the EL read %d bytes of a body that went back to the pool (of %d read)", s.poisoned, s.n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.WaitReturned(ctx); err != nil {
		t.Fatalf("the transport never let go of the body: %v", err)
	}
}
