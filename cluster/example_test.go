package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kvmesh/kvmesh/cluster"
)

// Two nodes on one machine: a router starts the cluster, a worker joins it through the
// router's gossip address, and the router's subscription reports the worker.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := cluster.LocalConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))

	router, err := cluster.Join(ctx, cfg, cluster.Meta{ID: "router-1", Role: cluster.RoleRouter,
		HTTPAddr: "127.0.0.1:8080", Model: "9f2c", State: cluster.StateReady})
	if err != nil {
		panic(err)
	}
	defer router.Shutdown()
	events, stop := router.Subscribe()
	defer stop()

	cfg.Seeds = []string{router.Addr()}
	worker, err := cluster.Join(ctx, cfg, cluster.Meta{ID: "worker-1", Role: cluster.RoleWorker,
		GRPCAddr: "127.0.0.1:9000", Model: "9f2c", First: 0, Last: 5, Pipeline: "p0",
		FreeBlocks: 512, TotalBlocks: 512, State: cluster.StateLoading})
	if err != nil {
		panic(err)
	}
	defer worker.Shutdown()

	for ev := range events {
		fmt.Println(ev.Kind, ev.Meta.ID, ev.Meta.Role, ev.Meta.State)
		if ev.Meta.ID == "worker-1" {
			break
		}
	}
	// Output:
	// join router-1 router ready
	// join worker-1 worker loading
}
