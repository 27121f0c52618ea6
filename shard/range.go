package shard

import (
	"fmt"
	"strconv"
	"strings"
)

// Range is the half-open layer range [First, Last): layers First, First+1, ..., Last-1.
// A valid Range has 0 <= First < Last.
type Range struct{ First, Last int }

// ParseRange parses "first:last", the half-open range [first, last) as in a Go slice
// expression: "0:4" is layers 0, 1, 2 and 3. Spaces around the numbers are allowed. An
// empty, inverted or negative range, or anything else, is ErrRange. ParseRange(r.String())
// == r for every valid r.
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return Range{}, fmt.Errorf("%w: %q: want first:last, e.g. 0:4 for layers 0-3", ErrRange, s)
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return Range{}, fmt.Errorf("%w: %q: want first:last, e.g. 0:4 for layers 0-3", ErrRange, s)
	}
	r := Range{first, last}
	if err := r.valid(); err != nil {
		return Range{}, fmt.Errorf("%q: %w", s, err)
	}
	return r, nil
}

// String returns "first:last", the form ParseRange reads.
func (r Range) String() string { return strconv.Itoa(r.First) + ":" + strconv.Itoa(r.Last) }

// Len is the number of layers in r.
func (r Range) Len() int { return r.Last - r.First }

// Overlaps reports whether r and o share a layer.
func (r Range) Overlaps(o Range) bool { return r.First < o.Last && o.First < r.Last }

// Contains reports whether every layer of o is in r.
func (r Range) Contains(o Range) bool { return r.First <= o.First && o.Last <= r.Last }

// valid is nil for 0 <= First < Last, ErrRange otherwise.
func (r Range) valid() error {
	switch {
	case r.First < 0:
		return fmt.Errorf("%w: layers %s: negative", ErrRange, r)
	case r.Last <= r.First:
		return fmt.Errorf("%w: layers %s: empty or inverted", ErrRange, r)
	}
	return nil
}

// within is valid, and also ErrRange for a range past the model's last layer.
func (r Range) within(m Model) error {
	if err := r.valid(); err != nil {
		return err
	}
	if r.Last > m.Layers {
		return fmt.Errorf("%w: layers %s: the model has %d layers (0:%d)", ErrRange, r, m.Layers, m.Layers)
	}
	return nil
}
