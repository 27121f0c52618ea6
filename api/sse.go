package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// sseWriter writes server-sent events: each event one "data: <json>\n\n" frame, flushed
// at once, and "data: [DONE]\n\n" at the end, as OpenAI streams do.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer // one frame
	enc *json.Encoder
	err error // the first write error; later writes are skipped
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s
}

// start sends the status and the event-stream headers.
func (s *sseWriter) start() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	s.flush()
}

// event sends v as one data frame.
func (s *sseWriter) event(v any) error {
	if s.err != nil {
		return s.err
	}
	s.buf.Reset()
	s.buf.WriteString("data: ")
	if err := s.enc.Encode(v); err != nil { // Encode ends with '\n'
		s.err = err
		return err
	}
	s.buf.WriteByte('\n')
	return s.write()
}

// done sends the closing "data: [DONE]" frame.
func (s *sseWriter) done() error {
	if s.err != nil {
		return s.err
	}
	s.buf.Reset()
	s.buf.WriteString("data: [DONE]\n\n")
	return s.write()
}

func (s *sseWriter) write() error {
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		s.err = err
		return err
	}
	s.flush()
	return s.err
}

func (s *sseWriter) flush() {
	if err := s.rc.Flush(); err != nil && s.err == nil {
		s.err = err
	}
}
