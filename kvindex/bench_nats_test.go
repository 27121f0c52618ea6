package kvindex

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
)

// BenchmarkPublishToIndex measures one 64-event batch from Publish until a router's
// index has applied it, over an embedded server on loopback.
func BenchmarkPublishToIndex(b *testing.B) {
	srv, url, err := StartServer(b.Context(), ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	pc, _ := Connect(url, ClientConfig{})
	defer pc.Close()
	sc, _ := Connect(url, ClientConfig{})
	defer sc.Close()
	pub, err := NewPublisher(pc, PublisherConfig{Model: "m", Node: "n", Incarnation: 1, Heartbeat: -1,
		Keys: func() []blocks.BlockHash { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := NewSubscriber(sc, SubscriberConfig{Model: "m"})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	keys := Keys(Seed("m", "t", 1), make([]int, 1<<12), 1)
	events := make([]blocks.Event, 64)
	i := 0
	for b.Loop() {
		for j := range events {
			kind := blocks.Stored
			if (i/len(keys))%2 == 1 {
				kind = blocks.Removed
			}
			events[j] = blocks.Event{Kind: kind, Hash: keys[i%len(keys)]}
			i++
		}
		if err := pub.Publish(events); err != nil {
			b.Fatal(err)
		}
		for sub.Stats().Applied < uint64(i) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
}

// BenchmarkSnapshot measures Sync of one publisher holding n keys.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 17} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv, url, err := StartServer(b.Context(), ServerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			pc, _ := Connect(url, ClientConfig{})
			defer pc.Close()
			sc, _ := Connect(url, ClientConfig{})
			defer sc.Close()
			held := Keys(Seed("m", "t", 1), make([]int, n), 1)
			pub, err := NewPublisher(pc, PublisherConfig{Model: "m", Node: "n", Incarnation: 1, Heartbeat: -1,
				Keys: func() []blocks.BlockHash { return held }})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			sub, err := NewSubscriber(sc, SubscriberConfig{Model: "m", SnapshotTimeout: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			for b.Loop() {
				if err := sub.Sync(b.Context(), []string{"n"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
