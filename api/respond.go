package api

import (
	"net/http"
	"time"

	"github.com/kvmesh/kvmesh/engine"
)

// collect reads every event and answers with the whole completion.
func (r *run) collect(w http.ResponseWriter, events <-chan engine.Event) {
	var evErr error
	for ev := range events {
		if ev.Err != nil {
			evErr = ev.Err
			continue
		}
		if d, ok := r.apply(ev, time.Now()); ok {
			r.samples[d.index].text.WriteString(d.text)
		}
	}
	if r.running > 0 {
		if e := r.endError(evErr); e != nil {
			writeError(w, e, 0)
		}
		return
	}
	u := r.usage()
	if r.kind == kindChat {
		resp := chatCompletion{ID: r.id, Object: "chat.completion", Created: r.created, Model: r.s.cfg.ModelName, Usage: u}
		for i := range r.samples {
			resp.Choices = append(resp.Choices, chatChoice{
				Index:        i,
				Message:      chatMessage{Role: "assistant", Content: r.samples[i].text.String()},
				FinishReason: r.samples[i].finish,
			})
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp := completion{ID: r.id, Object: "text_completion", Created: r.created, Model: r.s.cfg.ModelName, Usage: &u}
	for i := range r.samples {
		finish := r.samples[i].finish
		resp.Choices = append(resp.Choices, completionChoice{Index: i, Text: r.samples[i].text.String(), FinishReason: &finish})
	}
	writeJSON(w, http.StatusOK, resp)
}

// stream sends each delta as a server-sent event as it comes, then the usage (if asked)
// and [DONE]. If the client goes away the engine request is cancelled and the remaining
// events drained, so the engine frees the request's blocks.
func (r *run) stream(w http.ResponseWriter, events <-chan engine.Event, includeUsage bool) {
	sse := newSSEWriter(w)
	sse.start()
	if r.kind == kindChat { // the first chunk of each choice carries the role
		for i := range r.samples {
			empty := ""
			sse.event(r.chatChunk(chatChunkChoice{Index: i, Delta: chatDelta{Role: "assistant", Content: &empty}}))
		}
	}
	var evErr error
	for ev := range events {
		if ev.Err != nil {
			evErr = ev.Err
			continue
		}
		d, ok := r.apply(ev, time.Now())
		if !ok || sse.err != nil {
			continue
		}
		if err := sse.event(r.chunk(d)); err != nil {
			r.cancel() // the client is gone: stop generating, keep draining
		}
	}
	if sse.err != nil {
		return
	}
	if r.running > 0 {
		if e := r.endError(evErr); e != nil {
			sse.event(errorBody{Error: e})
		}
		return
	}
	if includeUsage {
		u := r.usage()
		if r.kind == kindChat {
			sse.event(chatChunk{ID: r.id, Object: "chat.completion.chunk", Created: r.created, Model: r.s.cfg.ModelName,
				Choices: []chatChunkChoice{}, Usage: &u})
		} else {
			sse.event(completion{ID: r.id, Object: "text_completion", Created: r.created, Model: r.s.cfg.ModelName,
				Choices: []completionChoice{}, Usage: &u})
		}
	}
	sse.done()
}

// chunk is the streamed form of one delta.
func (r *run) chunk(d delta) any {
	var finish *string
	if d.finish != "" {
		finish = &d.finish
	}
	if r.kind == kindChat {
		c := chatChunkChoice{Index: d.index, FinishReason: finish}
		if d.text != "" {
			c.Delta.Content = &d.text
		}
		return r.chatChunk(c)
	}
	return completion{ID: r.id, Object: "text_completion", Created: r.created, Model: r.s.cfg.ModelName,
		Choices: []completionChoice{{Index: d.index, Text: d.text, FinishReason: finish}}}
}

func (r *run) chatChunk(c chatChunkChoice) chatChunk {
	return chatChunk{ID: r.id, Object: "chat.completion.chunk", Created: r.created, Model: r.s.cfg.ModelName,
		Choices: []chatChunkChoice{c}}
}
