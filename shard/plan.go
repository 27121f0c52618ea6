package shard

import (
	"cmp"
	"fmt"
	"slices"
)

// Worker is one worker as the membership view shows it.
type Worker struct {
	ID          string
	MemoryBytes int64  // memory it offers for weights and KV, bytes; 0: unknown, never chosen by Assign
	Range       *Range // its layers: an explicit range (flag) or the one it was assigned; nil: none yet
	Pipeline    string // the pipeline it was placed in; "": not placed yet
	Ready       bool   // its layers are loaded and it serves them
	Incarnation uint64 // its process start (cluster.Meta.Incarnation); of two overlapping workers the older stays; 0 counts as oldest
}

// Stage is one worker's place in a pipeline.
type Stage struct {
	Worker string
	Range  Range
	Ready  bool // the worker's Ready when the plan was built
}

// Pipeline is a chain of workers that together hold a model's layers.
type Pipeline struct {
	ID     string
	Stages []Stage // in layer order, disjoint; the gaps between them are missing layers
}

// Plan is the current placement of a cluster's workers.
type Plan struct {
	Pipelines []Pipeline // by ID
	Waiting   []Worker   // workers not placed in a pipeline yet, by ID
}

// Build returns the placement the workers' ranges and pipelines describe; workers is the
// membership view of live workers, in any order. A worker with both a Range and a
// Pipeline is a stage of that pipeline; one without a Pipeline is Waiting. Workers that
// cannot be placed as given are left out, each with an error: a range outside the model
// (ErrRange), a pipeline without a range or an empty or repeated ID (ErrBadWorker), a
// range overlapping another worker's in the same pipeline (ErrOverlap). Of two
// overlapping workers the ready one is kept, and between two that are both ready or both
// not, the older (smaller Incarnation), then the one with the smaller ID: every node
// building from the same view gets the same Plan, and the worker left out knows to ask
// Assign again.
func Build(m Model, workers []Worker) (Plan, []error) {
	m.check()
	ws := slices.Clone(workers)
	slices.SortStableFunc(ws, func(a, b Worker) int {
		if a.Ready != b.Ready {
			if a.Ready {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Incarnation, b.Incarnation), cmp.Compare(a.ID, b.ID))
	})
	var (
		plan Plan
		errs []error
		seen = make(map[string]bool, len(ws))
	)
	for _, w := range ws {
		switch {
		case w.ID == "":
			errs = append(errs, fmt.Errorf("%w: a worker without an ID", ErrBadWorker))
			continue
		case seen[w.ID]:
			errs = append(errs, fmt.Errorf("%w: worker %q appears twice in the view", ErrBadWorker, w.ID))
			continue
		case w.Pipeline != "" && w.Range == nil:
			errs = append(errs, fmt.Errorf("%w: worker %q is in pipeline %q without a layer range", ErrBadWorker, w.ID, w.Pipeline))
			continue
		}
		seen[w.ID] = true
		if w.Range != nil {
			if err := w.Range.within(m); err != nil {
				errs = append(errs, fmt.Errorf("worker %q: %w", w.ID, err))
				continue
			}
		}
		if w.Pipeline == "" {
			plan.Waiting = append(plan.Waiting, w)
			continue
		}
		s := Stage{Worker: w.ID, Range: *w.Range, Ready: w.Ready}
		if o, ok := plan.pipeline(w.Pipeline).overlapping(s.Range, ""); ok {
			errs = append(errs, overlapError(w.Pipeline, s, o))
			continue
		}
		plan.add(w.Pipeline, s)
	}
	slices.SortFunc(plan.Waiting, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
	return plan, errs
}

// overlapError is ErrOverlap for stage s refused because of stage o, kept.
func overlapError(pipeline string, s, o Stage) error {
	return fmt.Errorf("%w: worker %q (layers %s) overlaps worker %q (layers %s) in pipeline %q; %q is refused",
		ErrOverlap, s.Worker, s.Range, o.Worker, o.Range, pipeline, s.Worker)
}

// Find returns the pipeline and stage of the worker with the given ID, if it is placed.
func (p Plan) Find(worker string) (Pipeline, Stage, bool) {
	for _, pl := range p.Pipelines {
		for _, s := range pl.Stages {
			if s.Worker == worker {
				return pl, s, true
			}
		}
	}
	return Pipeline{}, Stage{}, false
}

// Serving returns the pipelines that are Complete, by ID. A nil ready uses each stage's
// Ready.
func (p Plan) Serving(m Model, ready func(worker string) bool) []Pipeline {
	var out []Pipeline
	for _, pl := range p.Pipelines {
		if pl.Complete(m, ready) {
			out = append(out, pl)
		}
	}
	return out
}

// Complete reports whether the pipeline can serve: its stages cover layers 0 to
// m.Layers-1, contiguous and without overlap, and every stage's worker is ready. A nil
// ready uses each stage's Ready.
func (p Pipeline) Complete(m Model, ready func(worker string) bool) bool {
	next := 0
	for _, s := range p.Stages {
		r := s.Ready
		if ready != nil {
			r = ready(s.Worker)
		}
		if !r || s.Range.First != next {
			return false
		}
		next = s.Range.Last
	}
	return next == m.Layers
}

// Gaps returns the layer ranges of the model that no stage of the pipeline holds, in
// layer order: what it misses to be complete.
func (p Pipeline) Gaps(m Model) []Range {
	var gaps []Range
	next := 0
	for _, s := range p.Stages {
		if s.Range.First > next {
			gaps = append(gaps, Range{next, s.Range.First})
		}
		next = max(next, s.Range.Last)
	}
	if next < m.Layers {
		gaps = append(gaps, Range{next, m.Layers})
	}
	return gaps
}

// overlapping returns a stage of p other than the one of worker except whose range
// overlaps r.
func (p Pipeline) overlapping(r Range, except string) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Worker != except && s.Range.Overlaps(r) {
			return s, true
		}
	}
	return Stage{}, false
}

// pipeline returns the pipeline with the given ID, or an empty one.
func (p *Plan) pipeline(id string) Pipeline {
	if i, ok := slices.BinarySearchFunc(p.Pipelines, id, func(pl Pipeline, id string) int { return cmp.Compare(pl.ID, id) }); ok {
		return p.Pipelines[i]
	}
	return Pipeline{ID: id}
}

// add puts stage s into pipeline id, creating the pipeline, keeping pipelines by ID and
// stages in layer order. The caller has checked that s overlaps no stage.
func (p *Plan) add(id string, s Stage) {
	i, ok := slices.BinarySearchFunc(p.Pipelines, id, func(pl Pipeline, id string) int { return cmp.Compare(pl.ID, id) })
	if !ok {
		p.Pipelines = slices.Insert(p.Pipelines, i, Pipeline{ID: id})
	}
	pl := &p.Pipelines[i]
	j, _ := slices.BinarySearchFunc(pl.Stages, s.Range.First, func(t Stage, first int) int { return cmp.Compare(t.Range.First, first) })
	pl.Stages = slices.Insert(pl.Stages, j, s)
}

// clone is a deep copy of p: Assign plans on a copy.
func (p Plan) clone() Plan {
	c := Plan{Pipelines: slices.Clone(p.Pipelines), Waiting: slices.Clone(p.Waiting)}
	for i := range c.Pipelines {
		c.Pipelines[i].Stages = slices.Clone(c.Pipelines[i].Stages)
	}
	return c
}
