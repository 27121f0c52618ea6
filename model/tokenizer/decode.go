package tokenizer

// bytePieces holds the one-byte string of every byte value.
var bytePieces = func() (p [256]string) {
	for i := range p {
		p[i] = string([]byte{byte(i)})
	}
	return p
}()

// Decode is the text run.c prints for token tok following token prev: tok's piece, less a
// leading space after BOS, or the raw byte of a "<0xHH>" piece. It panics for a tok
// outside the vocabulary. Print it only if Printable.
func (t *Tokenizer) Decode(prev, tok int) string {
	piece := t.pieces[tok]
	if prev == BOS && len(piece) > 0 && piece[0] == ' ' {
		piece = piece[1:]
	}
	if b, ok := scanByte(piece); ok {
		return bytePieces[b]
	}
	return piece
}

// scanByte mirrors sscanf(piece, "<0x%02hhX>", &b) == 1: the literal "<0x", then C
// whitespace, then a field of at most two characters: an optional sign and at least one
// hex digit. The closing '>' is not checked (sscanf's count does not depend on it). Not
// mirrored: a "0x" prefix inside the two-character field.
func scanByte(piece string) (byte, bool) {
	const prefix = "<0x"
	if len(piece) < len(prefix)+1 || piece[:len(prefix)] != prefix {
		return 0, false
	}
	s := piece[len(prefix):]
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	width, neg := 2, false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s, width = s[1:], width-1
	}
	v, digits := 0, 0
	for ; digits < width && digits < len(s); digits++ {
		d, ok := hexDigit(s[digits])
		if !ok {
			break
		}
		v = v*16 + d
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return byte(v), true
}

func hexDigit(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// Printable mirrors run.c's safe_printf: a piece is printed unless it is empty or it is a
// single byte that is neither printable ASCII (isprint) nor whitespace (isspace).
func Printable(piece string) bool {
	switch len(piece) {
	case 0:
		return false
	case 1:
		c := piece[0]
		return (c >= 0x20 && c < 0x7f) || isSpace(c)
	}
	return true
}
