package leader_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/kvmesh/kvmesh/engine"
	"github.com/kvmesh/kvmesh/leader"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

// A leader serving an engine on a loopback port, and a client running a greedy
// generation on it, as a router would.
func Example() {
	ck, err := ckpt.Open("../models/stories260K.bin")
	if err != nil {
		panic(err)
	}
	defer ck.Close()
	m, err := model.New(ck)
	if err != nil {
		panic(err)
	}
	eng, err := engine.New(m, engine.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer eng.Shutdown(context.Background())

	cfg := leader.DefaultServerConfig()
	cfg.NodeID, cfg.Incarnation, cfg.Model = "node-1", 1, m.Identity()
	cfg.FirstLayer, cfg.EndLayer = 0, m.Config.Layers
	srv, err := leader.NewServer(eng, cfg)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()

	ctx := context.Background()
	ccfg := leader.DefaultClientConfig()
	ccfg.Model = m.Identity() // refuse a leader of another model
	c, err := leader.Dial(ctx, ln.Addr().String(), ccfg)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: layers [%d, %d), ready %v\n", st.NodeID, st.FirstLayer, st.EndLayer, st.Ready)

	events, err := c.Submit(ctx, engine.Request{Prompt: []int{1, 403, 407, 261}, MaxTokens: 8})
	if err != nil {
		panic(err)
	}
	var tokens []int
	for ev := range events {
		switch {
		case ev.Err != nil:
			fmt.Println("error:", ev.Err)
		case ev.Finish != "":
			fmt.Println(tokens, ev.Finish)
		default:
			tokens = append(tokens, ev.Token)
		}
	}
	// Output:
	// node-1: layers [0, 5), ready true
	// [378 432 383 286 261 376 298 315] length
}
