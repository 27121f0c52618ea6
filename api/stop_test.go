package api

import (
	"strings"
	"testing"
)

// naiveStop is the answer without streaming: the text before the first stop string.
func naiveStop(text string, stops []string) (string, bool) {
	cut := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text, false
	}
	return text[:cut], true
}

// feed pushes pieces through a fresh matcher, checking after every push that the text
// let out plus the held text is all the text so far and that nothing is held that could
// not start a stop string.
func feed(t *testing.T, pieces []string, stops []string) (string, bool) {
	t.Helper()
	m := stopMatcher{stops: stops}
	var out, all strings.Builder
	for _, p := range pieces {
		all.WriteString(p)
		o, stopped := m.push(p)
		out.WriteString(o)
		if stopped {
			return out.String(), true
		}
		if out.String()+m.held != all.String() {
			t.Fatalf("pieces %q: out %q + held %q != text %q", pieces, out.String(), m.held, all.String())
		}
		if m.held != "" && !isStopPrefix(m.held, stops) {
			t.Fatalf("pieces %q: holds %q, which starts no stop string", pieces, m.held)
		}
	}
	out.WriteString(m.flush())
	return out.String(), false
}

func isStopPrefix(s string, stops []string) bool {
	for _, st := range stops {
		if strings.HasPrefix(st, s) {
			return true
		}
	}
	return false
}

func TestStopMatcherSplitEverywhere(t *testing.T) {
	cases := []struct {
		text  string
		stops []string
	}{
		{"Once upon a time, there was", []string{"there"}},
		{"Once upon a time, there was", []string{"\n"}},
		{"Lily said, \"Hi.\"\nTom said", []string{"\n", "said"}},
		{"abababc", []string{"ababc"}},
		{"aaaab", []string{"aab"}},
		{"xyz", []string{"xyz"}},
		{"the end. The End", []string{"The End", "end."}},
		{"no stop here", []string{"zzz", "herez"}},
		{"short", []string{"a much longer stop string than the text"}},
		{"ends with a partial sto", []string{"stop"}},
		{"ünïcödé stop ✓ done", []string{"✓"}},
		{"", []string{"x"}},
		{"plain", nil},
	}
	for _, c := range cases {
		want, wantStopped := naiveStop(c.text, c.stops)
		// Split in two at every byte, and one byte at a time.
		for i := 0; i <= len(c.text); i++ {
			got, stopped := feed(t, []string{c.text[:i], c.text[i:]}, c.stops)
			if got != want || stopped != wantStopped {
				t.Errorf("%q split at %d, stops %q: got %q %v, want %q %v", c.text, i, c.stops, got, stopped, want, wantStopped)
			}
		}
		var bytes []string
		for i := range len(c.text) {
			bytes = append(bytes, c.text[i:i+1])
		}
		if got, stopped := feed(t, bytes, c.stops); got != want || stopped != wantStopped {
			t.Errorf("%q byte by byte, stops %q: got %q %v, want %q %v", c.text, c.stops, got, stopped, want, wantStopped)
		}
	}
}

func TestStopMatcherHoldsBackOnlyPossibleStarts(t *testing.T) {
	m := stopMatcher{stops: []string{"The End"}}
	steps := []struct{ piece, out string }{
		{"and then", "and then"},
		{" Th", " "},                  // "Th" could start "The End"
		{"e", ""},                     // "The"
		{" Enormous", "The Enormous"}, // not a stop after all
		{" The En", " "},
		{"d", ""},
	}
	for i, s := range steps {
		out, stopped := m.push(s.piece)
		if i == len(steps)-1 {
			if !stopped || out != "" {
				t.Fatalf("last push: got %q stopped=%v, want the stop", out, stopped)
			}
			continue
		}
		if out != s.out || stopped {
			t.Fatalf("push %q: got %q stopped=%v, want %q", s.piece, out, stopped, s.out)
		}
	}
}
