package tokenizer

import (
	"math"
	"strings"
)

// minMergeScore is run.c's starting best score: a merge must score strictly more.
const minMergeScore float32 = -1e10

// Encode returns text's token ids exactly as run.c's encode (see the package doc), with BOS
// first if bos and EOS last if eos.
func (t *Tokenizer) Encode(text string, bos, eos bool) []int {
	tokens := t.initial(text, bos)
	tokens = t.merge(tokens)
	if eos {
		tokens = append(tokens, EOS)
	}
	return tokens
}

// initial is the token sequence before merging: BOS, the dummy prefix and one token per
// code point (or byte).
func (t *Tokenizer) initial(text string, bos bool) []int {
	if z := strings.IndexByte(text, 0); z >= 0 {
		text = text[:z] // a C string ends here
	}
	tokens := make([]int, 0, len(text)+3)
	if bos {
		tokens = append(tokens, BOS)
	}
	if text != "" && t.space >= 0 {
		tokens = append(tokens, t.space)
	}
	isCont := func(b byte) bool { return b&0xC0 == 0x80 }
	for i := 0; i < len(text); {
		// A code point: this byte, then continuation bytes while there are some and the
		// buffer holds fewer than four bytes.
		j := i + 1
		for j < len(text) && isCont(text[j]) && j-i < 4 {
			j++
		}
		if id, ok := t.ids[text[i:j]]; ok {
			tokens = append(tokens, id)
		} else {
			for k := i; k < j; k++ {
				tokens = append(tokens, byteFallback+int(text[k]))
			}
		}
		i = j
	}
	return tokens
}

// symbol is one token of the sequence being merged, in a doubly linked list over the
// initial positions.
type symbol struct {
	id         int32
	prev, next int32  // positions of the neighbours, -1 at the ends
	version    uint32 // bumped whenever the symbol changes or dies
}

// candidate is a possible merge of the symbols at left and right into id.
type candidate struct {
	key        uint64 // rank: ascending is the order run.c's scan picks, see rank
	right      int32  // position; left is in the key
	lver, rver uint32 // the symbols' versions when the candidate was made
	id         int32
}

// rank orders merges as run.c's scan picks them: a higher score first, then the leftmost
// (positions keep their order under merging). The score's bits are mapped to an unsigned
// order (-0 counted as +0, as C compares them equal) and complemented; the position is the
// low half.
func rank(score float32, left int32) uint64 {
	if score == 0 {
		score = 0 // -0 == +0 in C's comparison
	}
	b := math.Float32bits(score)
	if b>>31 == 1 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return uint64(^b)<<32 | uint64(uint32(left))
}

func (c candidate) left() int32 { return int32(uint32(c.key)) }

// candidates is a binary min-heap on key: the next merge at the root.
type candidates []candidate

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].key <= q[i].key {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *candidates) pop() candidate {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		best, l := i, 2*i+1
		if l < last && q[l].key < q[best].key {
			best = l
		}
		if l+1 < last && q[l+1].key < q[best].key {
			best = l + 1
		}
		if best == i {
			break
		}
		q[i], q[best] = q[best], q[i]
		i = best
	}
	*h = q
	return top
}

// merge applies run.c's merges to tokens: at each step the best-scoring adjacent pair
// whose concatenation is a piece, the leftmost on ties, until none is left.
func (t *Tokenizer) merge(tokens []int) []int {
	if len(tokens) < 2 {
		return tokens
	}
	syms := make([]symbol, len(tokens)) // (tokens)
	for i, id := range tokens {
		syms[i] = symbol{id: int32(id), prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1
	var buf []byte                        // concatenation scratch
	h := make(candidates, 0, len(tokens)) // (pending merges)
	consider := func(left int32) {
		if left < 0 || syms[left].next < 0 {
			return
		}
		l := &syms[left]
		r := &syms[l.next]
		buf = append(append(buf[:0], t.pieces[l.id]...), t.pieces[r.id]...)
		id, ok := t.ids[string(buf)]
		if !ok || !(t.scores[id] > minMergeScore) {
			return
		}
		h.push(candidate{key: rank(t.scores[id], left), right: l.next, lver: l.version, rver: r.version, id: int32(id)})
	}
	for i := range int32(len(syms) - 1) {
		consider(i)
	}
	for len(h) > 0 {
		c := h.pop()
		left := c.left()
		l, r := &syms[left], &syms[c.right]
		if l.version != c.lver || r.version != c.rver || l.next != c.right {
			continue // stale: a side has changed or died since
		}
		l.id = c.id
		l.version++
		l.next = r.next
		r.version++ // dead: no longer reachable from the list
		if r.next >= 0 {
			syms[r.next].prev = left
		}
		consider(l.prev)
		consider(left)
	}
	out := tokens[:0]
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	return out
}
