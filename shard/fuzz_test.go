package shard

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// FuzzPlacement: any view at all (ranges past the model, inverted or negative, repeated
// IDs, pipelines without ranges, zero or negative memory) builds a plan that keeps its
// invariants, and every waiting worker's Assign answer is inside the model, overlaps no
// stage of its pipeline and fits the worker. Nothing panics.
func FuzzPlacement(f *testing.F) {
	f.Add([]byte{5, 1, 2, 3, 4, 0, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Add([]byte{12, 10, 40, 40, 2, 7, 0, 0, 200, 3, 1, 3, 0, 4, 100, 0, 0, 0, 1, 2, 0, 9, 255, 255, 255})
	f.Add([]byte("garbage on the gossip port is not a view, but it must not crash the planner"))
	f.Fuzz(placeAnything)
}

// placeAnything decodes data into a model and a view (5 bytes a worker), builds the plan
// and lets every waiting worker ask Assign.
func placeAnything(t *testing.T, data []byte) {
	if len(data) < 6 {
		return
	}
	m := Model{Layers: 1 + int(data[0]%32), LayerBytes: int64(data[1]), EmbedBytes: int64(data[2]),
		HeadBytes: int64(data[3]), KVBytesPerToken: int64(data[4] % 8)}
	minKV := int(data[5] % 16)
	data = data[6:]
	var ws []Worker
	for i := 0; len(data) >= 5; i++ {
		w := Worker{ID: fmt.Sprintf("w%d", data[0]%16), MemoryBytes: int64(int16(binary.LittleEndian.Uint16(data[1:])))}
		w.MemoryBytes *= 8
		if data[3]&1 != 0 {
			w.Range = &Range{int(int8(data[3])) >> 1, int(int8(data[4]))}
		}
		if data[3]&2 != 0 {
			w.Pipeline = fmt.Sprintf("p%d", data[4]%3)
		}
		w.Ready = data[0]&0x80 != 0
		ws = append(ws, w)
		data = data[5:]
	}
	p, _ := Build(m, ws)
	checkPlan(t, m, p)
	for _, w := range p.Waiting {
		r, pl, err := p.Assign(m, w, minKV)
		if err != nil {
			if errName(err) == "other" {
				t.Fatalf("Assign(%+v): %v wraps no sentinel", w, err)
			}
			continue
		}
		checkAssigned(t, m, p, w, r, pl, minKV)
	}
}

// BenchmarkAssign: a view of 256 placed workers in 64 pipelines with one gap each, and 32
// waiting, asks Build and Assign for the last waiting worker.
func BenchmarkAssign(b *testing.B) {
	m := Model{Layers: 32, LayerBytes: 200 << 20, EmbedBytes: 250 << 20, HeadBytes: 250 << 20, KVBytesPerToken: 128 << 10}
	var ws []Worker
	for pl := range 64 {
		for st := range 4 {
			if st == pl%4 {
				continue
			}
			r := Range{st * 8, st*8 + 8}
			ws = append(ws, Worker{ID: fmt.Sprintf("w%d-%d", pl, st), MemoryBytes: 4 << 30, Range: &r,
				Pipeline: fmt.Sprintf("p%d", pl), Ready: true})
		}
	}
	for i := range 32 {
		ws = append(ws, Worker{ID: fmt.Sprintf("new%02d", i), MemoryBytes: int64(2+i%3) << 30})
	}
	me := ws[len(ws)-1]
	b.ReportAllocs()
	for b.Loop() {
		p, _ := Build(m, ws)
		if _, _, err := p.Assign(m, me, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
