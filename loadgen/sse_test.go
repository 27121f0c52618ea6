package loadgen

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// parseAll feeds the pieces of a stream in order and returns the events' data.
func parseAll(t testing.TB, pieces ...[]byte) []string {
	t.Helper()
	var p sseParser
	var got []string
	for _, piece := range pieces {
		if err := p.feed(piece, func(data []byte) error {
			got = append(got, string(data))
			return nil
		}); err != nil {
			t.Fatalf("feed: %v", err)
		}
	}
	return got
}

// bytewise splits s into one-byte pieces.
func bytewise(s []byte) [][]byte {
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}

func TestSSEParser(t *testing.T) {
	fixture, err := os.ReadFile("testdata/stream_ok.sse")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stream string
		want   []string
	}{
		{"empty", "", nil},
		{"one event", "data: hello\n\n", []string{"hello"}},
		{"no space after colon", "data:hello\n\n", []string{"hello"}},
		{"only one space stripped", "data:  two\n\n", []string{" two"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"cr", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"mixed endings", "data: a\r\n\ndata: b\n\r\n", []string{"a", "b"}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []string{"a\nb\n"}},
		{"empty data dispatches", "data\n\n", []string{""}},
		{"comment and other fields", ": hi\nevent: x\nid: 3\nretry: 10\ndata: d\n\n", []string{"d"}},
		{"no data, no event", "event: x\n\n: c\n\n", nil},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []string{"a"}},
		{"blank lines between", "\n\n\ndata: a\n\n\n\n", []string{"a"}},
		{"colon in value", "data: {\"a\":\"b:c\"}\n\n", []string{`{"a":"b:c"}`}},
		{"field name is exact", "datum: x\ndata : y\n\n", nil},
		{"fixture", string(fixture), []string{
			`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"Once","finish_reason":null}]}`,
			`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" upon","finish_reason":null}]}`,
			`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" a","finish_reason":null}]}`,
			`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" time","finish_reason":"length"}]}`,
			`{"id":"cmpl-1","object":"text_completion","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}}`,
			`[DONE]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := []byte(tt.stream)
			if got := parseAll(t, s); !slices.Equal(got, tt.want) {
				t.Fatalf("whole: got %q, want %q", got, tt.want)
			}
			for i := 0; i <= len(s); i++ {
				if got := parseAll(t, s[:i], s[i:]); !slices.Equal(got, tt.want) {
					t.Fatalf("split at %d: got %q, want %q", i, got, tt.want)
				}
			}
			if got := parseAll(t, bytewise(s)...); !slices.Equal(got, tt.want) {
				t.Fatalf("byte by byte: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSSEParserLimits(t *testing.T) {
	var p sseParser
	long := []byte("data: " + strings.Repeat("x", maxLine))
	err := p.feed(long, func([]byte) error { return nil })
	if !errors.Is(err, ErrStream) {
		t.Fatalf("over-long line: got %v, want ErrStream", err)
	}
	stop := errors.New("stop")
	p = sseParser{}
	var n int
	err = p.feed([]byte("data: a\n\ndata: b\n\n"), func([]byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("emit error: got %v after %d events, want stop after 1", err, n)
	}
}

// FuzzSSEParser checks that where a stream is split does not change its events.
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{"data: a\n\n", "data: a\r\n\r\ndata: b\r\r", ": c\ndata:x\ndata\n\n", "data: [DONE]\n\n\r"} {
		f.Add([]byte(s), uint16(3))
	}
	if fixture, err := os.ReadFile("testdata/stream_ok.sse"); err == nil {
		f.Add(fixture, uint16(100))
	}
	f.Fuzz(func(t *testing.T, s []byte, at uint16) {
		want := parseAll(t, s)
		i := int(at) % (len(s) + 1)
		if got := parseAll(t, s[:i], s[i:]); !slices.Equal(got, want) {
			t.Fatalf("split at %d: got %q, want %q", i, got, want)
		}
		if got := parseAll(t, bytewise(s)...); !slices.Equal(got, want) {
			t.Fatalf("byte by byte: got %q, want %q", got, want)
		}
	})
}

// FuzzSSERoundTrip encodes event data as a stream and parses it back.
func FuzzSSERoundTrip(f *testing.F) {
	f.Add("hello", "world\nagain")
	f.Add("", "[DONE]")
	f.Add("a\r\nb", "c\rd")
	f.Fuzz(func(t *testing.T, a, b string) {
		var stream strings.Builder
		var want []string
		for _, d := range []string{a, b} {
			// Any line ending inside the data becomes "\n", as the format defines.
			d = strings.ReplaceAll(strings.ReplaceAll(d, "\r\n", "\n"), "\r", "\n")
			for line := range strings.SplitSeq(d, "\n") {
				stream.WriteString("data: " + line + "\n")
			}
			stream.WriteString("\n")
			want = append(want, d)
		}
		if got := parseAll(t, bytewise([]byte(stream.String()))...); !slices.Equal(got, want) {
			t.Fatalf("stream %q: got %q, want %q", stream.String(), got, want)
		}
	})
}

// FuzzReadStream feeds arbitrary bodies to the client's stream reader, a byte per read:
// it must fail with ErrStream or succeed with a record that agrees with itself.
func FuzzReadStream(f *testing.F) {
	if fixture, err := os.ReadFile("testdata/stream_ok.sse"); err == nil {
		f.Add(fixture)
	}
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"error\":{\"message\":\"x\"}}\n\n"))
	f.Add([]byte("data: [DONE]\n\ndata: {oops\n\n"))
	c := newClient(Config{Stream: true}, time.Now())
	f.Fuzz(func(t *testing.T, body []byte) {
		var rec Record
		err := c.readStream(iotest.OneByteReader(bytes.NewReader(body)), &rec)
		if err != nil {
			if !errors.Is(err, ErrStream) {
				t.Fatalf("error %v is not ErrStream", err)
			}
			return
		}
		if rec.End == 0 || len(rec.TokenTimes) > 0 && rec.TokenTimes[len(rec.TokenTimes)-1] > rec.End {
			t.Fatalf("record %+v", rec)
		}
	})
}
