package shard

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Range
		err  error
	}{
		{"0:4", Range{0, 4}, nil},
		{" 3 : 5 ", Range{3, 5}, nil},
		{"7:8", Range{7, 8}, nil},
		{"", Range{}, ErrRange},
		{"4", Range{}, ErrRange},
		{"0-3", Range{}, ErrRange},
		{"3:3", Range{}, ErrRange},  // empty
		{"4:2", Range{}, ErrRange},  // inverted
		{"-1:2", Range{}, ErrRange}, // negative
		{"a:2", Range{}, ErrRange},
		{"1:2:3", Range{}, ErrRange},
	} {
		got, err := ParseRange(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, err := ParseRange(got.String()); err != nil || back != got {
				t.Errorf("ParseRange(%q.String()) = %v, %v", got, back, err)
			}
		}
	}
}

func TestRangeOverlapsContains(t *testing.T) {
	for _, tc := range []struct {
		a, b               Range
		overlaps, contains bool
	}{
		{Range{0, 2}, Range{2, 4}, false, false},
		{Range{0, 3}, Range{2, 4}, true, false},
		{Range{0, 4}, Range{1, 3}, true, true},
		{Range{1, 3}, Range{0, 4}, true, false},
		{Range{0, 4}, Range{0, 4}, true, true},
	} {
		if got := tc.a.Overlaps(tc.b); got != tc.overlaps {
			t.Errorf("%v.Overlaps(%v) = %v", tc.a, tc.b, got)
		}
		if got := tc.b.Overlaps(tc.a); got != tc.overlaps {
			t.Errorf("%v.Overlaps(%v) = %v", tc.b, tc.a, got)
		}
		if got := tc.a.Contains(tc.b); got != tc.contains {
			t.Errorf("%v.Contains(%v) = %v", tc.a, tc.b, got)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"0:4", "4:2", "-1:3", "", "1:", ":1", "99999999999999999999:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrRange) {
				t.Fatalf("ParseRange(%q): %v does not wrap ErrRange", s, err)
			}
			return
		}
		if r.First < 0 || r.Last <= r.First {
			t.Fatalf("ParseRange(%q) = %v, not a valid range", s, r)
		}
		if back, err := ParseRange(r.String()); err != nil || back != r {
			t.Fatalf("round trip of %v: %v, %v", r, back, err)
		}
	})
}
