package shard

import "fmt"

// Model is what placement needs to know of a model: its layer count and the bytes each
// part takes in a worker's memory.
type Model struct {
	Layers          int   // transformer layers, > 0
	LayerBytes      int64 // weights of one layer, bytes
	EmbedBytes      int64 // token embedding table, held by the stage with layer 0, bytes
	HeadBytes       int64 // final norm and classifier, held by the stage with the last layer, bytes
	KVBytesPerToken int64 // keys and values of one token in one layer, bytes
}

// check panics on a Model no checkpoint describes: a programmer error.
func (m Model) check() {
	if m.Layers <= 0 || m.LayerBytes < 0 || m.EmbedBytes < 0 || m.HeadBytes < 0 || m.KVBytesPerToken < 0 {
		panic(fmt.Sprintf("shard: invalid Model %+v", m))
	}
}

// Bytes is the memory a worker holding r needs: r's layer weights, the embedding if r
// starts at layer 0, the classifier if r ends at the last layer, and the KV of kvTokens
// tokens in each of r's layers.
func (m Model) Bytes(r Range, kvTokens int) int64 {
	b := int64(r.Len()) * m.perLayer(kvTokens)
	if r.First == 0 {
		b += m.EmbedBytes
	}
	if r.Last == m.Layers {
		b += m.HeadBytes
	}
	return b
}

// perLayer is one layer's weights plus the KV of kvTokens tokens in it.
func (m Model) perLayer(kvTokens int) int64 {
	return m.LayerBytes + m.KVBytesPerToken*int64(kvTokens)
}

// fitFrom is the most layers a worker with mem bytes can hold starting at layer first
// and ending at or before layer limit, with the KV of kvTokens tokens per layer: 0 if it
// cannot hold even one.
func (m Model) fitFrom(mem int64, first, limit, kvTokens int) int {
	n := limit - first
	if per := m.perLayer(kvTokens); per > 0 {
		avail := mem
		if first == 0 {
			avail -= m.EmbedBytes
		}
		if avail < 0 {
			return 0
		}
		n = int(min(int64(n), avail/per))
	}
	for n > 0 && m.Bytes(Range{first, first + n}, kvTokens) > mem {
		n-- // only the classifier of a range reaching the last layer can tip it over
	}
	return n
}

// fitTo is the most layers a worker with mem bytes can hold ending at layer last and
// starting at or after layer limit: 0 if it cannot hold even one.
func (m Model) fitTo(mem int64, limit, last, kvTokens int) int {
	n := last - limit
	if per := m.perLayer(kvTokens); per > 0 {
		avail := mem
		if last == m.Layers {
			avail -= m.HeadBytes
		}
		if avail < 0 {
			return 0
		}
		n = int(min(int64(n), avail/per))
	}
	for n > 0 && m.Bytes(Range{last - n, last}, kvTokens) > mem {
		n-- // only the embedding of a range reaching layer 0 can tip it over
	}
	return n
}
