package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
)

// commonBody holds the fields both generation bodies share. Pointers tell "absent or
// null" (use the default) from a given value. Fields not listed are ignored.
type commonBody struct {
	Model            string         `json:"model"`
	MaxTokens        *int           `json:"max_tokens"`
	Temperature      *float64       `json:"temperature"`
	TopP             *float64       `json:"top_p"`
	N                *int           `json:"n"`
	Stream           *bool          `json:"stream"`
	StreamOptions    *streamOptions `json:"stream_options"`
	Stop             stopField      `json:"stop"`
	Seed             *int64         `json:"seed"`
	PresencePenalty  *float64       `json:"presence_penalty"`
	FrequencyPenalty *float64       `json:"frequency_penalty"`
}

// completionBody is the body of POST /v1/completions.
type completionBody struct {
	commonBody
	Prompt   *promptField `json:"prompt"`
	Echo     *bool        `json:"echo"`
	Logprobs *int         `json:"logprobs"`
	BestOf   *int         `json:"best_of"`
	Suffix   *string      `json:"suffix"`
}

// chatBody is the body of POST /v1/chat/completions.
type chatBody struct {
	commonBody
	Messages            []Message       `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	Tools               json.RawMessage `json:"tools"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one chat message: a role and its text. The JSON content may be a string or
// an array of {"type": "text", "text": ...} parts, which are concatenated.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// UnmarshalJSON accepts content as a string, null, or an array of text parts.
func (m *Message) UnmarshalJSON(data []byte) error {
	var raw struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	m.Role = raw.Role
	m.Content = ""
	c := bytes.TrimSpace(raw.Content)
	switch {
	case len(c) == 0 || string(c) == "null":
		return nil
	case c[0] == '"':
		return json.Unmarshal(c, &m.Content)
	case c[0] == '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(c, &parts); err != nil {
			return typeError("content", c)
		}
		var b strings.Builder
		for _, p := range parts {
			if p.Type != "text" || p.Text == nil {
				return invalidContent
			}
			b.WriteString(*p.Text)
		}
		m.Content = b.String()
		return nil
	}
	return typeError("content", c)
}

// invalidContent: a content part that is not text.
var invalidContent = errors.New("messages: only text content parts are supported")

// promptField is a completion prompt: a string, an array of one string, or an array of
// token ids (used as given: no BOS is added).
type promptField struct {
	text  string
	ids   []int
	isIDs bool
}

func (p *promptField) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &p.text)
	}
	if len(data) == 0 || data[0] != '[' {
		return typeError("", data)
	}
	var strs []string
	if json.Unmarshal(data, &strs) == nil {
		if len(strs) != 1 {
			return errBatchPrompt
		}
		p.text = strs[0]
		return nil
	}
	var ids []int
	if json.Unmarshal(data, &ids) == nil {
		p.ids, p.isIDs = ids, true
		return nil
	}
	var batch [][]int
	if json.Unmarshal(data, &batch) == nil {
		if len(batch) != 1 {
			return errBatchPrompt
		}
		p.ids, p.isIDs = batch[0], true
		return nil
	}
	return typeError("", data)
}

// errBatchPrompt: more (or fewer) than one prompt in one request.
var errBatchPrompt = errors.New("prompt: exactly one prompt per request (a string, or an array of token ids)")

// stopField is "stop": null, a string, or an array of strings.
type stopField []string

func (s *stopField) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		*s = nil
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var one string
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = stopField{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return typeError("", data)
	}
	*s = many
	return nil
}

// typeError is the error a union field's UnmarshalJSON returns for data of the wrong
// type; encoding/json prepends the path of the field being decoded to field.
func typeError(field string, data []byte) error {
	return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[string](), Field: field}
}

// jsonKind names the JSON type of a value by its first byte.
func jsonKind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case '{':
		return "object"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// expected names the JSON type each field takes, for error messages.
var expected = map[string]string{
	"model":                 "a string",
	"prompt":                "a string or an array of token ids",
	"messages":              "an array of messages",
	"role":                  "a string",
	"content":               "a string or an array of text parts",
	"max_tokens":            "an integer",
	"max_completion_tokens": "an integer",
	"temperature":           "a number",
	"top_p":                 "a number",
	"n":                     "an integer",
	"stream":                "a boolean",
	"stream_options":        "an object",
	"include_usage":         "a boolean",
	"stop":                  "a string or an array of strings",
	"seed":                  "an integer",
	"echo":                  "a boolean",
	"logprobs":              "an integer or a boolean",
	"best_of":               "an integer",
	"suffix":                "a string",
	"presence_penalty":      "a number",
	"frequency_penalty":     "a number",
}

// decodeJSON unmarshals body into v, turning decoding errors into 400s that name the
// field and the type it takes.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "the request body is empty; send a JSON object")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, errBatchPrompt):
		return invalid("prompt", "%v", err)
	case errors.Is(err, invalidContent):
		return invalid("messages", "%v", err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("", "the request body must be a JSON object, not %s", typ.Value)
		}
		field := strings.TrimPrefix(typ.Field, "commonBody.") // encoding/json names the embedded struct
		leaf := field[strings.LastIndexByte(field, '.')+1:]
		want, ok := expected[leaf]
		if !ok {
			want = "a " + typ.Type.String()
		}
		if strings.HasPrefix(typ.Value, "number ") {
			return invalid(field, "%s must be %s; %s is out of range or not whole", field, want, strings.TrimPrefix(typ.Value, "number "))
		}
		return invalid(field, "%s must be %s, not %s", field, want, typ.Value)
	}
	return invalid("", "cannot decode the request body: %v", err)
}

// genRequest is a request after parsing and validation, before tokenization: what both
// endpoints have in common.
type genRequest struct {
	model        string
	text         string // prompt text, BOS added when encoded
	ids          []int  // prompt ids as given (idsGiven)
	idsGiven     bool
	maxTokens    int // 0: the configured default
	temperature  float64
	topP         float64
	seed         uint64 // 0: pick one at random
	n            int
	stop         []string
	stream       bool
	includeUsage bool
}

// limits are the bounds parsing checks against (from Config).
type limits struct {
	maxN, maxStops int
}

// parseCompletion decodes and validates a completion body.
func parseCompletion(body []byte, lim limits) (genRequest, *apiError) {
	var b completionBody
	if e := decodeJSON(body, &b); e != nil {
		return genRequest{}, e
	}
	switch {
	case b.Prompt == nil:
		return genRequest{}, invalid("prompt", "prompt is required")
	case b.Echo != nil && *b.Echo:
		return genRequest{}, invalid("echo", "echo is not supported")
	case b.Logprobs != nil:
		return genRequest{}, invalid("logprobs", "logprobs are not supported")
	case b.BestOf != nil && *b.BestOf != 1:
		return genRequest{}, invalid("best_of", "best_of is not supported (use n)")
	case b.Suffix != nil && *b.Suffix != "":
		return genRequest{}, invalid("suffix", "suffix is not supported")
	}
	g := genRequest{text: b.Prompt.text, ids: b.Prompt.ids, idsGiven: b.Prompt.isIDs}
	if g.idsGiven && len(g.ids) == 0 {
		return genRequest{}, invalid("prompt", "prompt has no tokens")
	}
	return g, g.setCommon(&b.commonBody, b.MaxTokens, "max_tokens", lim)
}

// parseChat decodes and validates a chat body; the prompt text is left for the template.
func parseChat(body []byte, lim limits) (genRequest, []Message, *apiError) {
	var b chatBody
	if e := decodeJSON(body, &b); e != nil {
		return genRequest{}, nil, e
	}
	switch {
	case len(b.Messages) == 0:
		return genRequest{}, nil, invalid("messages", "messages is required and must not be empty")
	case b.Logprobs != nil && *b.Logprobs:
		return genRequest{}, nil, invalid("logprobs", "logprobs are not supported")
	case len(b.Tools) > 0 && string(b.Tools) != "null" && string(b.Tools) != "[]":
		return genRequest{}, nil, invalid("tools", "tools are not supported")
	case b.MaxTokens != nil && b.MaxCompletionTokens != nil && *b.MaxTokens != *b.MaxCompletionTokens:
		return genRequest{}, nil, invalid("max_completion_tokens", "max_tokens and max_completion_tokens differ; give one")
	}
	for i, m := range b.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		case "":
			return genRequest{}, nil, invalid("messages", "messages[%d].role is required", i)
		default:
			return genRequest{}, nil, invalid("messages", "messages[%d].role %q is not supported (system, developer, user or assistant)", i, m.Role)
		}
	}
	maxTokens, param := b.MaxCompletionTokens, "max_completion_tokens"
	if maxTokens == nil {
		maxTokens, param = b.MaxTokens, "max_tokens"
	}
	var g genRequest
	return g, b.Messages, g.setCommon(&b.commonBody, maxTokens, param, lim)
}

// setCommon validates the shared fields into g; maxTokens is the field that gives
// max_tokens, named param.
func (g *genRequest) setCommon(s *commonBody, maxTokens *int, param string, lim limits) *apiError {
	g.model = s.Model
	g.temperature, g.topP, g.n = 1, 1, 1
	if maxTokens != nil {
		if *maxTokens <= 0 {
			return invalid(param, "%s must be at least 1, not %d", param, *maxTokens)
		}
		g.maxTokens = *maxTokens
	}
	if s.Temperature != nil {
		t := *s.Temperature
		if math.IsNaN(t) || math.IsInf(t, 0) || t < 0 || float64(float32(t)) > math.MaxFloat32 {
			return invalid("temperature", "temperature must be a finite number >= 0, not %v", t)
		}
		g.temperature = t
	}
	if s.TopP != nil {
		p := *s.TopP
		if math.IsNaN(p) || p < 0 || p > 1 {
			return invalid("top_p", "top_p must be a number in [0, 1], not %v", p)
		}
		g.topP = p
	}
	if g.topP == 0 {
		// The nucleus of mass 0 is the most probable token alone: greedy. (The sampler
		// reads top_p 0 as "off", so say it here.)
		g.temperature, g.topP = 0, 1
	}
	if s.N != nil {
		if *s.N < 1 || *s.N > lim.maxN {
			return invalid("n", "n must be between 1 and %d, not %d", lim.maxN, *s.N)
		}
		g.n = *s.N
	}
	if len(s.Stop) > lim.maxStops {
		return invalid("stop", "at most %d stop strings, not %d", lim.maxStops, len(s.Stop))
	}
	for _, st := range s.Stop {
		if st == "" {
			return invalid("stop", "stop strings must not be empty")
		}
	}
	g.stop = s.Stop
	if s.Seed != nil {
		g.seed = uint64(*s.Seed)
		if g.seed == 0 {
			g.seed = zeroSeed
		}
	}
	for _, pen := range []struct {
		name string
		v    *float64
	}{{"presence_penalty", s.PresencePenalty}, {"frequency_penalty", s.FrequencyPenalty}} {
		if pen.v != nil && *pen.v != 0 {
			return invalid(pen.name, "%s is not supported (only 0)", pen.name)
		}
	}
	g.stream = s.Stream != nil && *s.Stream
	if s.StreamOptions != nil {
		if !g.stream {
			return invalid("stream_options", "stream_options is only allowed with stream: true")
		}
		g.includeUsage = s.StreamOptions.IncludeUsage
	}
	return nil
}
