package kvindex_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvmesh/kvmesh/blocks"
	"github.com/kvmesh/kvmesh/kvindex"
)

// A router embeds the NATS server; a pipeline leader publishes its cache events; the
// router syncs on start, then routes a prompt to the pipeline holding its prefix.
func Example() {
	ctx := context.Background()
	srv, url, err := kvindex.StartServer(ctx, kvindex.ServerConfig{User: "kv", Password: "secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	creds := kvindex.ClientConfig{User: "kv", Password: "secret"}

	// Every node computes keys from the same seed.
	seed := kvindex.Seed("sha256:<checkpoint>", "sha256:<tokenizer>", 4)
	prompt := []int{1, 403, 407, 261, 378, 432, 383, 286, 261}
	keys := kvindex.Keys(seed, prompt, 4) // 2 full blocks

	// The leader of pipeline A holds the prompt's first block.
	leaderConn, err := kvindex.Connect(url, creds)
	if err != nil {
		log.Fatal(err)
	}
	defer leaderConn.Close()
	held := []blocks.BlockHash{keys[0]}
	pub, err := kvindex.NewPublisher(leaderConn, kvindex.PublisherConfig{
		Model: "stories260K", Node: "leader-a", Incarnation: uint64(time.Now().UnixNano()),
		Keys: func() []blocks.BlockHash { return held }, // under the engine's lock, in real use
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish([]blocks.Event{{Kind: blocks.Stored, Hash: keys[0]}}); err != nil {
		log.Fatal(err)
	}

	// The router starts later, subscribes, and asks the leaders membership knows.
	routerConn, err := kvindex.Connect(url, creds)
	if err != nil {
		log.Fatal(err)
	}
	defer routerConn.Close()
	sub, err := kvindex.NewSubscriber(routerConn, kvindex.SubscriberConfig{Model: "stories260K"})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Sync(ctx, []string{"leader-a"}); err != nil {
		log.Fatal(err)
	}
	cands := []kvindex.Candidate{
		{Node: "leader-b", QueueDepth: 0, FreeBlocks: 100},
		{Node: "leader-a", QueueDepth: 0, FreeBlocks: 100},
	}
	best, matched := sub.Pick(cands, keys)
	fmt.Println(cands[best].Node, "holds", matched, "of", len(keys), "blocks")
	// Output: leader-a holds 1 of 2 blocks
}
