package cluster

import "sync"

// subscriber delivers events to one Subscribe channel from its own goroutine, so that a
// slow reader never blocks the memberlist callbacks that produce the events.
//
// Buffering policy: events wait in an unbounded queue in order. An Update coalesces into
// the queued Join, Update or Restart of the same incarnation of the same node that is
// still waiting (its Meta is replaced by the newer one), so a stalled reader holds at
// most a few events per node however often nodes re-gossip their load. Join, Leave,
// Dead and Restart are never dropped or reordered.
type subscriber struct {
	mu     sync.Mutex // protects q and closed
	q      []Event
	closed bool

	wake chan struct{} // cap 1: the queue has grown
	done chan struct{} // closed by close
	out  chan Event    // closed by the delivery goroutine when it exits
}

func newSubscriber(initial []Event) *subscriber {
	s := &subscriber{
		q:    initial,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		out:  make(chan Event),
	}
	go s.run()
	return s
}

// push queues ev; it never blocks.
func (s *subscriber) push(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.q = coalesce(s.q, ev)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// coalesce appends ev to q, or folds an Update into the last queued event for the same
// node incarnation when that event carries the node's full Meta (Join, Update, Restart).
func coalesce(q []Event, ev Event) []Event {
	if ev.Kind == KindUpdate {
		for i := len(q) - 1; i >= 0; i-- {
			if q[i].Meta.ID != ev.Meta.ID {
				continue
			}
			if q[i].Meta.Incarnation == ev.Meta.Incarnation && q[i].Kind != KindLeave && q[i].Kind != KindDead {
				q[i].Meta = ev.Meta
				return q
			}
			break
		}
	}
	return append(q, ev)
}

// close stops delivery; queued events are dropped and the channel is closed. Idempotent.
func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.q = nil
		close(s.done)
	}
}

func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.q = nil // let a long burst's backing array go
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		// Take the head out of the queue before sending, so that an Update arriving
		// while the reader is slow coalesces into a queued event, not into one already
		// being handed over.
		ev := s.q[0]
		s.q[0] = Event{}
		s.q = s.q[1:]
		s.mu.Unlock()
		select {
		case s.out <- ev:
		case <-s.done:
			return
		}
	}
}
