package kvindex

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
)

// benchPair starts an embedded server with one publisher (node "n", keys from held) and
// one subscriber on their own connections; b's cleanup closes them all.
func benchPair(b *testing.B, held func() []blocks.BlockHash) (*Publisher, *Subscriber) {
	b.Helper()
	srv, url, err := StartServer(b.Context(), ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	pc, err := Connect(url, ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pc.Close)
	sc, err := Connect(url, ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sc.Close)
	pub, err := NewPublisher(pc, PublisherConfig{Model: "m", Node: "n", Incarnation: 1, Heartbeat: -1, Keys: held})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	sub, err := NewSubscriber(sc, SubscriberConfig{Model: "m", SnapshotTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

// BenchmarkPublishToIndex measures one 64-event batch from Publish until a router's
// index has applied it, over an embedded server on loopback.
func BenchmarkPublishToIndex(b *testing.B) {
	pub, sub := benchPair(b, func() []blocks.BlockHash { return nil })
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
			held := Keys(Seed("m", "t", 1), make([]int, n), 1)
			_, sub := benchPair(b, func() []blocks.BlockHash { return held })
			for b.Loop() {
				if err := sub.Sync(b.Context(), []string{"n"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
