package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSSEFraming(t *testing.T) {
	rec := httptest.NewRecorder()
	w := newSSEWriter(&recorder{ResponseWriter: rec})
	w.start()
	if err := w.event(map[string]string{"text": "a <b> & \"c\"\n"}); err != nil {
		t.Fatal(err)
	}
	if err := w.event(errorBody{Error: invalid("n", "bad n")}); err != nil {
		t.Fatal(err)
	}
	if err := w.done(); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !rec.Flushed {
		t.Error("not flushed")
	}
	want := "data: {\"text\":\"a <b> & \\\"c\\\"\\n\"}\n\n" +
		"data: {\"error\":{\"message\":\"bad n\",\"type\":\"invalid_request_error\",\"param\":\"n\",\"code\":null}}\n\n" +
		"data: [DONE]\n\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body:\n%s\nwant:\n%s", got, want)
	}
	// Every frame is one line of data and a blank line: no raw newline inside the JSON.
	for _, frame := range strings.SplitAfter(strings.TrimSuffix(rec.Body.String(), "\n\n"), "\n\n") {
		if strings.Count(strings.TrimSuffix(frame, "\n\n"), "\n") != 0 {
			t.Errorf("frame spans lines: %q", frame)
		}
	}
}
