package shard

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Check validates worker w's explicit range against the model and the existing plan: a
// range outside the model's layers is ErrRange, one whose weights (with no KV) exceed a
// known MemoryBytes is ErrNoFit, and one overlapping another live worker of w.Pipeline
// is ErrOverlap, naming that worker and both ranges. A worker without a Range passes.
// Whether w serves the same model at all is not checked here: the cluster compares model
// identities before a worker enters the view (cluster.Config.Accept).
func Check(m Model, existing Plan, w Worker) error {
	m.check()
	if w.Range == nil {
		return nil
	}
	r := *w.Range
	if err := r.within(m); err != nil {
		return fmt.Errorf("worker %q: %w", w.ID, err)
	}
	if need := m.Bytes(r, 0); w.MemoryBytes > 0 && need > w.MemoryBytes {
		return fmt.Errorf("%w: worker %q offers %d bytes, the weights of layers %s take %d",
			ErrNoFit, w.ID, w.MemoryBytes, r, need)
	}
	if w.Pipeline != "" {
		if o, ok := existing.pipeline(w.Pipeline).overlapping(r, w.ID); ok {
			return overlapError(w.Pipeline, Stage{Worker: w.ID, Range: r}, o)
		}
	}
	return nil
}

// Assign returns the layer range and pipeline for worker w, given the plan built from
// the current view; minKVTokens is the KV cache, in tokens, every worker must keep room
// for beside its weights. The rules, in the package doc:
//
//   - a worker already placed in p keeps its place;
//   - a worker with Range and Pipeline keeps them, once Check passes;
//   - a worker with a Range but no Pipeline joins the incomplete pipeline whose gap holds
//     its range, or starts a new pipeline;
//   - a worker without a Range fills a gap of an incomplete pipeline, the one closest to
//     serving first, else starts a new pipeline, with a range sized by its memory.
//
// Assign places p.Waiting (and w) together, explicit ranges first, in a fixed order, so
// that workers that start together and see the same view choose disjoint ranges without
// talking to each other. ErrNoFit: w cannot hold even one layer where one is needed, or
// its explicit range with the KV of minKVTokens tokens; Check's errors for an explicit
// range.
func (p Plan) Assign(m Model, w Worker, minKVTokens int) (Range, string, error) {
	m.check()
	if w.ID == "" {
		return Range{}, "", fmt.Errorf("%w: a worker without an ID", ErrBadWorker)
	}
	if minKVTokens < 0 {
		panic("shard: negative minKVTokens")
	}
	if pl, s, ok := p.Find(w.ID); ok {
		return s.Range, pl.ID, nil
	}
	if w.Range != nil {
		if err := checkExplicit(m, p, w, minKVTokens); err != nil {
			return Range{}, "", err
		}
		if w.Pipeline != "" {
			return *w.Range, w.Pipeline, nil
		}
	}

	sim := p.clone()
	var explicit, pool []Worker
	for _, x := range sim.Waiting {
		if x.ID == w.ID {
			continue // w's record in the view: w itself is newer
		}
		if x.Range != nil {
			explicit = append(explicit, x)
		} else {
			pool = append(pool, x)
		}
	}
	if w.Range != nil {
		explicit = append(explicit, w)
	} else {
		pool = append(pool, w)
	}

	// Explicit ranges first, by ID.
	slices.SortFunc(explicit, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
	for _, x := range explicit {
		if x.ID != w.ID && checkExplicit(m, sim, x, minKVTokens) != nil {
			continue // it will be refused when it asks
		}
		id := sim.gapHolding(m, *x.Range)
		sim.add(id, Stage{Worker: x.ID, Range: *x.Range})
		if x.ID == w.ID {
			return *x.Range, id, nil
		}
	}

	// Then the range-less workers, largest memory first: gaps in gaps order, then new
	// pipelines.
	slices.SortFunc(pool, byMemory)
	for _, g := range sim.gaps(m) {
		if r, ok := sim.fill(m, g.pipeline, g.Range, &pool, minKVTokens, w.ID); ok {
			return r, g.pipeline, nil
		}
	}
	for len(pool) > 0 {
		id := sim.newID()
		n := len(pool)
		if r, ok := sim.fill(m, id, Range{0, m.Layers}, &pool, minKVTokens, w.ID); ok {
			return r, id, nil
		}
		if len(pool) == n {
			break // nobody left can hold the first stage
		}
	}
	return Range{}, "", fmt.Errorf("%w: worker %q offers %d bytes; a layer with the KV of %d tokens takes %d, the first stage %d more, the last %d more",
		ErrNoFit, w.ID, w.MemoryBytes, minKVTokens, m.perLayer(minKVTokens), m.EmbedBytes, m.HeadBytes)
}

// checkExplicit is Check, and ErrNoFit for an explicit range that leaves no room for the
// KV of kvTokens tokens.
func checkExplicit(m Model, p Plan, w Worker, kvTokens int) error {
	if err := Check(m, p, w); err != nil {
		return err
	}
	if need := m.Bytes(*w.Range, kvTokens); w.MemoryBytes > 0 && need > w.MemoryBytes {
		return fmt.Errorf("%w: worker %q offers %d bytes, layers %s with the KV of %d tokens take %d",
			ErrNoFit, w.ID, w.MemoryBytes, *w.Range, kvTokens, need)
	}
	return nil
}

// gap is a missing layer range of a pipeline.
type gap struct {
	pipeline string
	Range
}

// gaps returns the gaps of all pipelines in the order Assign fills them: the pipeline
// missing the fewest layers first (the one closest to serving: one that lost a worker
// before one still forming), then the largest gap, then by pipeline ID and first layer.
func (p *Plan) gaps(m Model) []gap {
	var gs []gap
	missing := map[string]int{}
	for _, pl := range p.Pipelines {
		for _, r := range pl.Gaps(m) {
			gs = append(gs, gap{pl.ID, r})
			missing[pl.ID] += r.Len()
		}
	}
	slices.SortFunc(gs, func(a, b gap) int {
		return cmp.Or(cmp.Compare(missing[a.pipeline], missing[b.pipeline]), cmp.Compare(b.Len(), a.Len()),
			cmp.Compare(a.pipeline, b.pipeline), cmp.Compare(a.First, b.First))
	})
	return gs
}

// gapHolding returns the pipeline whose first gap (in gaps order) contains r, or a new
// pipeline's ID.
func (p *Plan) gapHolding(m Model, r Range) string {
	for _, g := range p.gaps(m) {
		if g.Contains(r) {
			return g.pipeline
		}
	}
	return p.newID()
}

// newID returns "p0", "p1", ...: the first not used by a pipeline of p.
func (p *Plan) newID() string {
	for i := 0; ; i++ {
		id := "p" + strconv.Itoa(i)
		if _, ok := slices.BinarySearchFunc(p.Pipelines, id, func(pl Pipeline, id string) int { return cmp.Compare(pl.ID, id) }); !ok {
			return id
		}
	}
}

// fill places a group of workers from *pool (sorted, largest memory first) into gap g of
// pipeline id, adds their stages to p and removes them from *pool. The group is the
// shortest run of the pool, in order, that covers g with each member holding as many
// layers as it can (members that can hold nothing at their place are skipped); g is
// split in proportion to the memory each member has left beside the embedding and
// classifier (share). If the whole pool cannot cover g, the split assumes that workers
// like the group's smallest will come for the rest, which stays missing. fill reports
// the range of the worker named want if it is in the group.
func (p *Plan) fill(m Model, id string, g Range, pool *[]Worker, kvTokens int, want string) (Range, bool) {
	var group []Worker
	rest := (*pool)[:0:0]
	pos := g.First
	for _, x := range *pool {
		if pos < g.Last {
			if n := m.fitFrom(x.MemoryBytes, pos, g.Last, kvTokens); n > 0 {
				group = append(group, x)
				pos += n
				continue
			}
		}
		rest = append(rest, x)
	}
	*pool = rest
	if len(group) == 0 {
		return Range{}, false
	}
	workers := len(group)
	for like := group[workers-1]; pos < g.Last && len(group) < workers+g.Len(); {
		n := m.fitFrom(like.MemoryBytes, pos, g.Last, kvTokens)
		if n == 0 {
			break
		}
		like.ID = "" // not a worker: room kept for one to come
		group = append(group, like)
		pos += n
	}
	covers := pos >= g.Last

	var got Range
	var found bool
	start := g.First
	for j, x := range group[:workers] {
		hi := m.fitFrom(x.MemoryBytes, start, g.Last, kvTokens)
		n := hi
		if covers {
			n = m.share(g.Last, start, x, group[j+1:], kvTokens, hi)
		}
		if n <= 0 {
			*pool = append(*pool, x) // cannot hold a layer here after all; keep it for later
			continue
		}
		r := Range{start, start + n}
		p.add(id, Stage{Worker: x.ID, Range: r})
		if x.ID == want {
			got, found = r, true
		}
		start += n
	}
	slices.SortFunc(*pool, byMemory)
	return got, found
}

// byMemory orders workers by memory, largest first, then by ID.
func byMemory(a, b Worker) int {
	return cmp.Or(cmp.Compare(b.MemoryBytes, a.MemoryBytes), cmp.Compare(a.ID, b.ID))
}

// share is how many layers, from layer start up to end, worker x holds when it and the
// workers after it split them in proportion to their memory (less the embedding on the
// first stage and the classifier on the last), between 1 and hi (what x can hold), and
// enough that the others can hold the rest.
func (m Model) share(end, start int, x Worker, after []Worker, kvTokens, hi int) int {
	left := end - start
	if len(after) == 0 {
		return min(left, hi)
	}
	own := float64(x.MemoryBytes)
	if start == 0 {
		own -= float64(m.EmbedBytes)
	}
	total := own
	restCap := 0 // most layers the workers after x hold, x leaving them at least one each
	per := m.perLayer(kvTokens)
	for i, y := range after {
		mem := float64(y.MemoryBytes)
		if i == len(after)-1 {
			if end == m.Layers {
				mem -= float64(m.HeadBytes)
			}
			restCap += m.fitTo(y.MemoryBytes, start+1, end, kvTokens)
		} else if per > 0 {
			restCap += int(min(int64(left), y.MemoryBytes/per))
		} else {
			restCap += left
		}
		total += max(mem, 0)
	}
	n := left / (len(after) + 1)
	if total > 0 {
		n = int(math.Round(float64(left) * max(own, 0) / total))
	}
	lo := max(1, left-restCap)
	hi = min(hi, left-len(after))
	return max(min(n, hi), min(lo, hi))
}
