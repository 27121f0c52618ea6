package api

import "strings"

// stopMatcher finds stop strings in text that arrives piece by piece. It holds back the
// end of the text that could be the start of a stop string, so text it has let out never
// needs taking back: a stop string that appears later always starts in the held text.
type stopMatcher struct {
	stops []string
	held  string // text not yet let out: a suffix that is a prefix of some stop string
}

// push appends piece and returns the text that is safe to let out. stopped reports that a
// stop string appeared: out is then the text before it, and the matcher must not be used
// again.
func (m *stopMatcher) push(piece string) (out string, stopped bool) {
	if len(m.stops) == 0 {
		return piece, false
	}
	text := m.held + piece
	if i := m.firstStop(text); i >= 0 {
		m.held = ""
		return text[:i], true
	}
	keep := m.longestStopPrefixSuffix(text)
	m.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// flush returns the held text, at the end of the generation.
func (m *stopMatcher) flush() string {
	out := m.held
	m.held = ""
	return out
}

// firstStop returns where the earliest stop string in text begins, or -1.
func (m *stopMatcher) firstStop(text string) int {
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(text, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// longestStopPrefixSuffix returns the length of the longest suffix of text that is a
// proper prefix of some stop string (a whole one would have been found by firstStop).
func (m *stopMatcher) longestStopPrefixSuffix(text string) int {
	best := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(text)); k > best; k-- {
			if strings.HasSuffix(text, s[:k]) {
				best = k
				break
			}
		}
	}
	return best
}
