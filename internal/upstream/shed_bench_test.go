package upstream

import (
	"fmt"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
)

// BenchmarkEnqueueBehind is one arrival at a lane that is behind with n requests queued (a
// block and its head update, as a range-syncing beacon node sends them) and the budget full,
// while another lane keeps the arrival: the behind lane sheds its newest block and update.
func BenchmarkEnqueueBehind(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 60_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			t := &testing.T{}
			size := int64(cap(npDelivery(t, 1).Body))
			var fill int64
			for seq := 1; seq <= n/2; seq++ {
				fill += int64(cap(npDelivery(t, seq).Body) + cap(fcuDelivery(t, "f", seq, false).Body))
			}
			bl, err := backlog.New(fill, 2)
			if err != nil {
				b.Fatal(err)
			}
			l, err := New(Config{Name: "el", URL: "http://127.0.0.1:1", Backlog: bl}, nil)
			if err != nil {
				b.Fatal(err)
			}
			seq := 1
			for ; seq <= n/2; seq++ {
				l.Enqueue(npDelivery(t, seq))
				l.Enqueue(fcuDelivery(t, "f", seq, false))
			}
			l.Enqueue(npDelivery(t, seq)) // over the budget: shed, behind
			seq++
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
			shed := l.Stats().Drops[DropShed] - before
			if shed == 0 {
				b.Fatalf("%d arrivals shed nothing", b.N)
			}
			b.ReportMetric(float64(shed)/float64(b.N), "shed/op")
		})
	}
}
