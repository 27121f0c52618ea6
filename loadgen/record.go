package loadgen

import "time"

// Record is what happened to one request. Times are offsets from the start of the run;
// a time that did not happen is 0.
type Record struct {
	// Index is the request's number in the run, 0-based; it picks the prompt and the
	// sampling seed (Config.Seed + Index).
	Index int `json:"index"`
	// Group is the prompt's shared-prefix group, or -1.
	Group int `json:"group"`
	// PromptWords is the prompt's length in words.
	PromptWords int `json:"prompt_words"`
	// MaxTokens is the request's max_tokens.
	MaxTokens int `json:"max_tokens"`
	// Scheduled is when the request was due: its Poisson arrival, or its start in a
	// closed loop.
	Scheduled time.Duration `json:"scheduled_ns"`
	// Start is when the request was first sent.
	Start time.Duration `json:"start_ns"`
	// FirstByte is when the first byte of the (last attempt's) response body arrived.
	FirstByte time.Duration `json:"first_byte_ns,omitempty"`
	// TokenTimes holds, for each streamed chunk that carried a token, when it arrived.
	// Empty for a non-streaming request.
	TokenTimes []time.Duration `json:"token_times_ns,omitempty"`
	// End is when the response was complete ([DONE] or the whole body), or failed.
	End time.Duration `json:"end_ns"`
	// PromptTokens and OutputTokens are the server's usage counts; without a usage
	// object, OutputTokens is len(TokenTimes) and PromptTokens 0.
	PromptTokens int `json:"prompt_tokens"`
	OutputTokens int `json:"output_tokens"`
	// FinishReason is the server's finish_reason ("length", "stop").
	FinishReason string `json:"finish_reason,omitempty"`
	// Text is the generated text.
	Text string `json:"text,omitempty"`
	// Status is the HTTP status of the last attempt, 0 if none arrived.
	Status int `json:"status,omitempty"`
	// Rejections counts 429 answers, retried or not.
	Rejections int `json:"rejections,omitempty"`
	// Error and ErrorKind describe a failure; both are empty on success.
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
}

// OK reports whether the request succeeded.
func (r *Record) OK() bool { return r.ErrorKind == "" }

// E2E is the end-to-end latency: from the first send to the end of the response.
func (r *Record) E2E() time.Duration { return r.End - r.Start }

// TTFT is the time to first token, from the first send; ok is false without a streamed
// token.
func (r *Record) TTFT() (d time.Duration, ok bool) {
	if len(r.TokenTimes) == 0 {
		return 0, false
	}
	return r.TokenTimes[0] - r.Start, true
}

// TPOT is the time per output token after the first: the time from the first to the
// last streamed token over OutputTokens−1. ok is false with fewer than two tokens.
func (r *Record) TPOT() (d time.Duration, ok bool) {
	n := len(r.TokenTimes)
	if n == 0 || r.OutputTokens < 2 {
		return 0, false
	}
	return (r.TokenTimes[n-1] - r.TokenTimes[0]) / time.Duration(r.OutputTokens-1), true
}

// appendITL appends the request's inter-token latencies, the gaps between consecutive
// streamed tokens, to dst.
func (r *Record) appendITL(dst []time.Duration) []time.Duration {
	for i := 1; i < len(r.TokenTimes); i++ {
		dst = append(dst, r.TokenTimes[i]-r.TokenTimes[i-1])
	}
	return dst
}

// fail marks the record failed with err at time end.
func (r *Record) fail(err error, end time.Duration) {
	r.Error = err.Error()
	r.ErrorKind = ErrorKind(err)
	r.End = end
}
