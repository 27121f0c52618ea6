package ckpt

import (
	"fmt"
	"iter"
)

// role is what a tensor of the file is.
type role uint8

const (
	roleEmbedding role = iota
	roleAttnNorm
	roleWq
	roleWk
	roleWv
	roleWo
	roleFFNNorm
	roleW1
	roleW2
	roleW3
	roleFinalNorm
	roleRopeCos // legacy only, unused
	roleRopeSin // legacy only, unused
	roleClassifier
)

var roleNames = [...]string{
	roleEmbedding: "embedding", roleAttnNorm: "attn_norm", roleWq: "wq", roleWk: "wk",
	roleWv: "wv", roleWo: "wo", roleFFNNorm: "ffn_norm", roleW1: "w1", roleW2: "w2",
	roleW3: "w3", roleFinalNorm: "final_norm", roleRopeCos: "freq_cis_real",
	roleRopeSin: "freq_cis_imag", roleClassifier: "classifier",
}

// kind is how a tensor is stored.
type kind uint8

const (
	fp32   kind = iota // little-endian float32 values
	q8                 // int8 values, then one float32 scale per group
	unused             // float32 values that nothing reads (the legacy RoPE tables)
)

// segment is one tensor in file order.
type segment struct {
	role       role
	layer      int // for per-layer tensors; -1 otherwise
	rows, cols int
	kind       kind
}

// name is the tensor's name as Write's fill callback sees it: "embedding",
// "layers.3.wq", "final_norm", "classifier", ...
func (s segment) name() string {
	if s.layer >= 0 {
		return fmt.Sprintf("layers.%d.%s", s.layer, roleNames[s.role])
	}
	return roleNames[s.role]
}

func (s segment) elems() int64 { return int64(s.rows) * int64(s.cols) }

// bytes is the segment's size in the file; groupSize matters only for q8. The config must
// be valid (so that the size cannot overflow).
func (s segment) bytes(groupSize int) int64 {
	n := s.elems()
	if s.kind == q8 {
		return n + 4*(n/int64(groupSize))
	}
	return 4 * n
}

// bytesPerValue is bytes / elems, for overflow-free size estimates.
func (s segment) bytesPerValue(groupSize int) float64 {
	if s.kind == q8 {
		return 1 + 4/float64(groupSize)
	}
	return 4
}

// segments yields c's tensors in the order of c.Version's file layout. The shape fields
// must be positive (it does not validate).
func (c Config) segments() iter.Seq[segment] {
	return func(yield func(segment) bool) {
		dim, hidden, kv, L := c.Dim, c.HiddenDim, c.KVDim(), c.Layers
		ok := true // false once yield has asked to stop
		one := func(r role, rows, cols int, k kind) {
			ok = ok && yield(segment{role: r, layer: -1, rows: rows, cols: cols, kind: k})
		}
		perLayer := func(r role, rows, cols int, k kind) {
			for l := 0; l < L && ok; l++ {
				ok = yield(segment{role: r, layer: l, rows: rows, cols: cols, kind: k})
			}
		}
		matrices := func(k kind) {
			perLayer(roleWq, dim, dim, k)
			perLayer(roleWk, kv, dim, k)
			perLayer(roleWv, kv, dim, k)
			perLayer(roleWo, dim, dim, k)
		}
		ffn := func(k kind) {
			perLayer(roleW1, hidden, dim, k)
			perLayer(roleW2, dim, hidden, k)
			perLayer(roleW3, hidden, dim, k)
		}
		matrixKind := fp32
		switch c.Version {
		case 0:
			one(roleEmbedding, c.Vocab, dim, fp32)
			perLayer(roleAttnNorm, 1, dim, fp32)
			matrices(fp32)
			perLayer(roleFFNNorm, 1, dim, fp32)
			ffn(fp32)
			one(roleFinalNorm, 1, dim, fp32)
			one(roleRopeCos, c.SeqLen, c.HeadSize()/2, unused)
			one(roleRopeSin, c.SeqLen, c.HeadSize()/2, unused)
		default:
			if c.Version == 2 {
				matrixKind = q8
			}
			perLayer(roleAttnNorm, 1, dim, fp32)
			perLayer(roleFFNNorm, 1, dim, fp32)
			one(roleFinalNorm, 1, dim, fp32)
			one(roleEmbedding, c.Vocab, dim, matrixKind)
			matrices(matrixKind)
			ffn(matrixKind)
		}
		if !c.SharedClassifier {
			one(roleClassifier, c.Vocab, dim, matrixKind)
		}
	}
}
