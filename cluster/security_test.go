package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kvmesh/kvmesh/internal/garbage"
)

func key(seed uint64, n int) []byte { return garbage.Bytes(rand.New(rand.NewPCG(seed, 0)), n) }

func withKey(k []byte) func(*Config) { return func(c *Config) { c.SecretKey = k } }

// TestEncryption: nodes sharing a key form a cluster; a node with another key, or none,
// cannot join it, and an encrypted node cannot join a plaintext cluster.
func TestEncryption(t *testing.T) {
	k1 := key(1, 32)
	a := startNode(t, workerMeta("a"), nil, withKey(k1))
	b := startNode(t, workerMeta("b"), []string{a.Addr()}, withKey(k1))
	c := startNode(t, workerMeta("c"), []string{b.Addr()}, withKey(k1))
	for _, n := range []*Member{a, b, c} {
		waitFor(t, 5*time.Second, "encrypted cluster", func() error { return seesExactly(n, "a", "b", "c") })
	}
	plain := startNode(t, workerMeta("plain"), nil, nil)

	var wg sync.WaitGroup
	for _, tc := range []struct {
		name string
		seed string
		key  []byte
	}{
		{"other key", a.Addr(), key(2, 32)},
		{"other key size", a.Addr(), key(1, 16)},
		{"no key", a.Addr(), nil},
		{"key into plaintext", plain.Addr(), k1},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := tryNode(t, workerMeta("intruder-"+tc.name), []string{tc.seed}, withKey(tc.key), time.Second)
			if !errors.Is(err, ErrNoSeed) {
				t.Errorf("%s: Join = %v, want ErrNoSeed", tc.name, err)
			}
			t.Logf("%s: refused after %v: %v", tc.name, time.Since(start).Round(time.Millisecond), err)
		}()
	}
	wg.Wait()
	// The intruders never got in (a loaded machine may show a member suspected for a
	// moment, hence the wait).
	for _, n := range []*Member{a, b, c} {
		waitFor(t, 5*time.Second, "cluster unchanged", func() error { return seesExactly(n, "a", "b", "c") })
	}
	waitFor(t, 5*time.Second, "plaintext node alone", func() error { return seesExactly(plain, "plain") })
}

// TestGarbage sends hostile UDP packets and TCP streams to live nodes' gossip ports,
// plaintext and encrypted: the nodes stay up, keep their members, and still gossip.
func TestGarbage(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plaintext", nil}, {"encrypted", key(3, 16)}} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, workerMeta("a"), nil, withKey(tc.key))
			b := startNode(t, workerMeta("b"), []string{a.Addr()}, withKey(tc.key))
			waitFor(t, 5*time.Second, "pair", func() error { return seesExactly(a, "a", "b") })

			// A connection held open without a word must not stall anything.
			idle, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			udp, err := net.Dial("udp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer udp.Close()
			payloads := garbage.Gossip(uint64(len(tc.key)))
			for _, p := range payloads {
				udp.Write(p) // errors (ICMP refusals) do not matter
			}
			var wg sync.WaitGroup
			for i, p := range payloads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", a.Addr())
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * time.Second))
					c.Write(p)
					if i%2 == 0 { // half hang up at once, half wait for the node to close
						var buf [512]byte
						for {
							if _, err := c.Read(buf[:]); err != nil {
								return
							}
						}
					}
				}()
			}
			wg.Wait()

			// Still alive: members kept (a loaded machine may see b suspected for a
			// moment), updates flow, a new node joins.
			waitFor(t, 5*time.Second, "members kept", func() error { return seesExactly(a, "a", "b") })
			meta := b.Self()
			meta.QueueDepth = 42
			if err := b.Update(meta); err != nil {
				t.Fatal(err)
			}
			c := startNode(t, workerMeta("c"), []string{a.Addr()}, withKey(tc.key))
			waitFor(t, 5*time.Second, "gossip after garbage", func() error {
				for _, m := range a.Members() {
					if m.ID == "b" && m.QueueDepth != 42 {
						return fmt.Errorf("a sees b's queue depth %d", m.QueueDepth)
					}
				}
				return seesExactly(c, "a", "b", "c")
			})
		})
	}
}
