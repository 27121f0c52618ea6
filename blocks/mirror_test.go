package blocks

import "testing"

// TestMirrorFollowsOwner writes the same K/V through an owning cache and through a mirror
// that uses the owner's block ids, and reads both back equal.
func TestMirrorFollowsOwner(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shape = Shape{Layers: 1, KVHeads: 1, HeadSize: 4, BlockSize: 2}
	cfg.NumBlocks = 4
	cfg.RecordCopies = true
	owner, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mirror, cfg.RecordCopies = true, false
	mirror, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb := &Table{}
	if !owner.Append(tb, 3) {
		t.Fatal("out of blocks")
	}
	view := mirror.View(append([]int(nil), tb.Blocks...), tb.Len)
	for p := range 3 {
		k := []float32{float32(p), 1, 2, 3}
		v := []float32{4, 5, 6, float32(p)}
		b, s := tb.Slot(p)
		owner.Write(b, s, 0, k, v)
		mb, ms := view.Slot(p)
		mirror.Write(mb, ms, 0, k, v)
	}
	// A fork appends: copy on write in the owner, the same copy repeated in the mirror.
	f := owner.Fork(tb)
	last := f.Blocks[1]
	if !owner.Append(f, 1) {
		t.Fatal("out of blocks")
	}
	copies := owner.TakeCopies(nil)
	if len(copies) != 1 || copies[0] != (Copy{Dst: f.Blocks[1], Src: last}) {
		t.Fatalf("recorded copies %v, want one from %d to %d", copies, last, f.Blocks[1])
	}
	for _, cp := range copies {
		mirror.CopyBlock(cp.Dst, cp.Src)
	}
	if more := owner.TakeCopies(nil); len(more) != 0 {
		t.Errorf("copies taken twice: %v", more)
	}
	a, b := make([]float32, 4), make([]float32, 4)
	for p := range 3 {
		ob, os := f.Slot(p)
		owner.ReadK(a, ob, os, 0, 0)
		mirror.ReadK(b, ob, os, 0, 0)
		if a[0] != b[0] || a[3] != b[3] {
			t.Errorf("position %d: owner %v, mirror %v", p, a, b)
		}
	}
	owner.Release(f)
	owner.Release(tb)
	if err := owner.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestViewRejectsMisuse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shape = Shape{Layers: 1, KVHeads: 1, HeadSize: 4, BlockSize: 2}
	cfg.NumBlocks = 2
	plain, _ := New(cfg)
	cfg.Mirror = true
	mirror, _ := New(cfg)
	for name, f := range map[string]func(){
		"view on a plain cache": func() { plain.View([]int{0}, 1) },
		"too few blocks":        func() { mirror.View([]int{0}, 3) },
		"block out of range":    func() { mirror.View([]int{5}, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
