package blocks

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestExportImportRoundTrip moves every block's bytes into another block and checks that
// its K and V read back bit-identical, for every storage type.
func TestExportImportRoundTrip(t *testing.T) {
	for _, dt := range []DType{FP32, FP16, Int8, Int4} {
		t.Run(dt.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Shape = Shape{Layers: 2, KVHeads: 2, HeadSize: 8, BlockSize: 4}
			cfg.DType, cfg.NumBlocks = dt, 4
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			src := &Table{}
			if !c.Append(src, 4) {
				t.Fatal("out of blocks")
			}
			k, v := make([]float32, 16), make([]float32, 16)
			for slot := range 4 {
				for l := range 2 {
					for i := range k {
						k[i], v[i] = rng.Float32()*2-1, rng.Float32()*2-1
					}
					c.Write(src.Blocks[0], slot, l, k, v)
				}
			}
			payload := c.ExportBlock(nil, src.Blocks[0])
			if len(payload) != c.PayloadSize() {
				t.Fatalf("payload %d bytes, PayloadSize %d", len(payload), c.PayloadSize())
			}
			dst := &Table{}
			if !c.Append(dst, 4) {
				t.Fatal("out of blocks")
			}
			if err := c.ImportBlock(dst.Blocks[0], payload); err != nil {
				t.Fatal(err)
			}
			if err := c.ImportBlock(dst.Blocks[0], payload[1:]); !errors.Is(err, ErrBadPayload) {
				t.Errorf("a short payload: %v, want ErrBadPayload", err)
			}
			a, b := make([]float32, 8), make([]float32, 8)
			for slot := range 4 {
				for l := range 2 {
					for h := range 2 {
						c.ReadK(a, src.Blocks[0], slot, l, h)
						c.ReadK(b, dst.Blocks[0], slot, l, h)
						if !equalBits(a, b) {
							t.Fatalf("K slot %d layer %d head %d: %v != %v", slot, l, h, a, b)
						}
						c.ReadV(a, src.Blocks[0], slot, l, h)
						c.ReadV(b, dst.Blocks[0], slot, l, h)
						if !equalBits(a, b) {
							t.Fatalf("V slot %d layer %d head %d: %v != %v", slot, l, h, a, b)
						}
					}
				}
			}
			c.Release(src)
			c.Release(dst)
			if err := c.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFreeCachedAndUncache(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shape = Shape{Layers: 1, KVHeads: 1, HeadSize: 2, BlockSize: 2}
	cfg.NumBlocks = 4
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb := &Table{}
	if !c.Append(tb, 6) {
		t.Fatal("out of blocks")
	}
	for i := range 3 {
		c.SetHash(tb, i, BlockHash{byte(i + 1)})
	}
	if got := c.FreeCached(nil); len(got) != 0 {
		t.Fatalf("live blocks listed as free cached: %v", got)
	}
	blocks := append([]int(nil), tb.Blocks...)
	c.Release(tb)
	got := c.FreeCached(nil)
	// Released tail first: the last block is the coldest.
	want := []int{blocks[2], blocks[1], blocks[0]}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("FreeCached = %v, want %v", got, want)
	}
	c.Uncache(blocks[2])
	if _, ok := c.Lookup(BlockHash{3}); ok {
		t.Error("uncached hash still hits")
	}
	if got := c.FreeCached(nil); len(got) != 2 {
		t.Errorf("FreeCached after Uncache = %v", got)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func equalBits(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

// TestExportLayout pins the payload format the disk tier stores: FP32 little-endian, K
// tiles transposed (headSize, blockSize) per (layer, head), then V tiles (blockSize,
// headSize).
func TestExportLayout(t *testing.T) {
	cfg := Config{Shape: Shape{Layers: 1, KVHeads: 2, HeadSize: 4, BlockSize: 2}, NumBlocks: 1}
	c := newTestCache(t, cfg)
	tb := &Table{}
	c.Append(tb, 2)
	c.Write(0, 1, 0, []float32{1, 2, 3, 4, 5, 6, 7, 8}, []float32{-1, -2, -3, -4, -5, -6, -7, -8})
	got := bytesToFloats(c.ExportBlock(nil, 0))
	want := []float32{
		0, 1, 0, 2, 0, 3, 0, 4, // K head 0: (i, slot)
		0, 5, 0, 6, 0, 7, 0, 8, // K head 1
		0, 0, 0, 0, -1, -2, -3, -4, // V head 0: (slot, i)
		0, 0, 0, 0, -5, -6, -7, -8, // V head 1
	}
	if !slices.Equal(got, want) {
		t.Fatalf("payload %v\nwant    %v", got, want)
	}
	c.Release(tb)
}

func bytesToFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestExportGolden pins the payload bytes of every storage type (what the disk tier keeps
// across restarts) against testdata/export_<dtype>.golden; -update rewrites them.
func TestExportGolden(t *testing.T) {
	for _, d := range allDTypes {
		t.Run(d.String(), func(t *testing.T) {
			cfg := Config{Shape: Shape{Layers: 2, KVHeads: 2, HeadSize: 4, BlockSize: 2}, DType: d, NumBlocks: 1}
			c := newTestCache(t, cfg)
			tb := &Table{}
			c.Append(tb, 2)
			for s := range 2 {
				for l := range 2 {
					k, v := make([]float32, 8), make([]float32, 8)
					for i := range k {
						k[i] = float32(s*100+l*10+i) / 7
						v[i] = -float32(s*100+l*10+i) / 3
					}
					c.Write(0, s, l, k, v)
				}
			}
			got := hex.Dump(c.ExportBlock(nil, 0))
			path := filepath.Join("testdata", "export_"+d.String()+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("payload changed; the disk tier's blocks would no longer load.\ngot\n%s\nwant\n%s", got, want)
			}
			c.Release(tb)
		})
	}
}
