package kvindex

import "strings"

// DefaultPrefix is the subject prefix of all kvindex messages.
const DefaultPrefix = "kvmesh.kv"

// Subjects (tokens escaped by subjectToken):
//
//	<prefix>.ev.<model>.<node>    event batches of one publisher
//	<prefix>.snap.<model>.<node>  snapshot requests to one publisher (request/reply)
func eventSubject(prefix, model, node string) string {
	return prefix + ".ev." + subjectToken(model) + "." + subjectToken(node)
}

func eventWildcard(prefix, model string) string {
	return prefix + ".ev." + subjectToken(model) + ".*"
}

func snapshotSubject(prefix, model, node string) string {
	return prefix + ".snap." + subjectToken(model) + "." + subjectToken(node)
}

// subjectToken escapes s into one NATS subject token: ASCII letters, digits, '-' and '_'
// stay, every other byte becomes %XX (uppercase hex), so the mapping is injective and the
// token never holds '.', '*', '>' or white space. The empty string becomes "%".
func subjectToken(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// validPrefix reports whether p is a usable subject prefix: dot-separated tokens, none
// empty or holding a wildcard or white space.
func validPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, t := range strings.Split(p, ".") {
		if t == "" || strings.ContainsAny(t, "*> \t\r\n") {
			return false
		}
	}
	return true
}
