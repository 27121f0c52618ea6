package leader

import (
	"slices"
	"testing"

	"github.com/kvmesh/kvmesh/engine"
)

// TestReference: greedy and seeded sampled generations through a Client equal llama2.c's.
func TestReference(t *testing.T) {
	n := startNode(t, engine.Config{}, ServerConfig{})
	c := dial(t, n.addr, ClientConfig{})
	greedy, sampled := loadReference(t)
	for _, set := range []struct {
		name  string
		cases []refCase
	}{{"greedy", greedy}, {"sampled", sampled}} {
		for i, rc := range set.cases {
			res := run(t, c, rc.request())
			want, finish := rc.want()
			if res.err != nil {
				t.Fatalf("%s %d: %v", set.name, i, res.err)
			}
			if !slices.Equal(res.tokens[0], want) || res.finish[0] != finish {
				t.Errorf("%s %d (%q): got %v %s\nwant %v %s", set.name, i, rc.Prompt, res.tokens[0], res.finish[0], want, finish)
			}
		}
	}
}
