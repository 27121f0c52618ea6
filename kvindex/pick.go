package kvindex

import "github.com/kvmesh/kvmesh/blocks"

// Candidate is a pipeline the router may send a request to, named by its leader's node ID
// (the publisher of its cache events), with its load as membership reports it.
type Candidate struct {
	Node       string
	QueueDepth int // requests waiting or running on the pipeline
	FreeBlocks int // free KV blocks of the pipeline (its smallest stage)
}

// Pick chooses the candidate to serve a prompt whose block keys are keys, trading the
// cached prefix against load. For candidate c holding m leading keys of n:
//
//	cost(c) = (n − m)                                  blocks left to prefill
//	        + QueueWeight · c.QueueDepth               waiting behind other requests
//	        + ShortageWeight · max(0, n − m − c.FreeBlocks)  blocks it must evict or wait for
//
// and the lowest cost wins. Ties go to the longer cached prefix, then the shorter queue,
// then the smaller node ID, then the earlier candidate, so Pick is deterministic. With the
// default weights, among equally loaded candidates the longest prefix wins, and a
// candidate with k more requests queued must hold more than 2k more blocks to win.
// Pick returns the candidate's position and its m; (-1, 0) if there are no candidates.
func (ix *Index) Pick(cands []Candidate, keys []blocks.BlockHash) (best, matched int) {
	best = -1
	var bestCost float64
	for i := range cands {
		c := &cands[i]
		m := ix.MatchNode(c.Node, keys)
		rest := len(keys) - m
		cost := float64(rest) + ix.cfg.QueueWeight*float64(max(c.QueueDepth, 0))
		if short := rest - max(c.FreeBlocks, 0); short > 0 {
			cost += ix.cfg.ShortageWeight * float64(short)
		}
		if best < 0 || cost < bestCost || (cost == bestCost && better(c, m, &cands[best], matched)) {
			best, bestCost, matched = i, cost, m
		}
	}
	if best < 0 {
		return -1, 0
	}
	return best, matched
}

// better breaks a tie in cost between a (holding ma keys) and b (holding mb).
func better(a *Candidate, ma int, b *Candidate, mb int) bool {
	switch {
	case ma != mb:
		return ma > mb
	case a.QueueDepth != b.QueueDepth:
		return a.QueueDepth < b.QueueDepth
	}
	return a.Node < b.Node
}
