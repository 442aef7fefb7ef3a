package upstream

import (
	"fmt"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
)

// BenchmarkEnqueueBehind is one arrival at a lane that is behind with n blocks queued and
// the budget full, while another lane keeps the arrival: the behind lane sheds one block.
func BenchmarkEnqueueBehind(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 60_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			t := &testing.T{}
			size := int64(cap(npDelivery(t, 1).Body))
			bl, err := backlog.New(int64(n)*size, 2)
			if err != nil {
				b.Fatal(err)
			}
			l, err := New(Config{Name: "el", URL: "http://127.0.0.1:1", Backlog: bl}, nil)
			if err != nil {
				b.Fatal(err)
			}
			seq := 1
			for ; seq <= n+1; seq++ { // the last one is over the budget: behind
				l.Enqueue(npDelivery(t, seq))
			}
			ds := make([]*Delivery, b.N)
			for i := range ds {
				ds[i] = npDelivery(t, seq+i)
			}
			before := l.Stats().Drops[DropShed]
			b.ResetTimer()
			for _, d := range ds {
				bl.Hold(1, &d.charge, size)
				l.Enqueue(d)
			}
			b.StopTimer()
			if shed := l.Stats().Drops[DropShed] - before; shed != uint64(b.N) {
				b.Fatalf("%d arrivals shed %d queued blocks", b.N, shed)
			}
		})
	}
}
