package api

import (
	"encoding/json"
	"testing"
)

func TestPlainTemplate(t *testing.T) {
	cases := []struct {
		msgs []Message
		want string
	}{
		{[]Message{{"user", "Once upon a time"}}, "Once upon a time"},
		{[]Message{{"system", "A"}, {"user", "B"}}, "A\nB"},
		{[]Message{{"user", "Tell a story."}, {"assistant", "Once"}, {"user", "more"}}, "Tell a story.\nOnce\nmore"},
		{[]Message{{"user", ""}}, ""},
	}
	for _, c := range cases {
		got, err := PlainTemplate(c.msgs)
		if err != nil || got != c.want {
			t.Errorf("PlainTemplate(%v) = %q, %v; want %q", c.msgs, got, err, c.want)
		}
	}
	if _, err := PlainTemplate(nil); err == nil {
		t.Error("PlainTemplate(nil): no error")
	}
}

func TestMessageContentForms(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{`{"role":"user","content":"hi"}`, "hi", false},
		{`{"role":"user","content":null}`, "", false},
		{`{"role":"user"}`, "", false},
		{`{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}`, "ab", false},
		{`{"role":"user","content":[]}`, "", false},
		{`{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}`, "", true},
		{`{"role":"user","content":5}`, "", true},
		{`{"role":"user","content":{"text":"a"}}`, "", true},
		{`{"role":"user","content":["a"]}`, "", true},
		{`"hello"`, "", true},
	}
	for _, c := range cases {
		var m Message
		err := json.Unmarshal([]byte(c.in), &m)
		if (err != nil) != c.bad || (!c.bad && m.Content != c.want) {
			t.Errorf("%s: got %q, err %v; want %q, bad=%v", c.in, m.Content, err, c.want, c.bad)
		}
	}
}
