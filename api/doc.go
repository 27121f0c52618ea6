// Package api serves the OpenAI-compatible HTTP API over a Generator (the engine of one
// pipeline, in process, or the router's client of remote ones).
//
// # Endpoints
//
//   - POST /v1/completions: prompt (a string, an array of one string, or an array of token
//     ids used as given), max_tokens, temperature, top_p, n, stop, seed, stream,
//     stream_options.include_usage.
//   - POST /v1/chat/completions: messages rendered by the chat template (below), and the
//     same settings; max_completion_tokens is accepted for max_tokens.
//   - GET /v1/models, GET /v1/models/{id}: the one served model.
//   - GET /healthz (the process is up), GET /readyz (ready for generations: 503 while the
//     model is not ready or the server drains), GET /metrics (Prometheus).
//
// # Semantics
//
//   - The text of a choice is the continuation only, each token decoded after the one
//     before it as llama2.c's run prints it (tokenizer.Decode, shown only if
//     tokenizer.Printable): so a leading space is dropped only right after BOS.
//   - The prompt text is encoded with BOS first. A prompt may have at most ContextLen
//     tokens, and prompt plus max_tokens at most ContextLen+1 (the last sampled token is
//     never fed back, as in run.c); max_tokens absent means the rest of the context
//     (Config.DefaultMaxTokens can lower that).
//   - Sampling: temperature 1 and top_p 1 by default, as OpenAI; temperature 0 is greedy,
//     and top_p 0 (the nucleus of the most probable token alone) is greedy too. Without a
//     seed the server picks one at random per request; "seed": 0 is the sampler's
//     DefaultSeed. Choice i of n samples with seed+i; the n choices are one engine request
//     and share the prompt's KV blocks.
//   - Stop tokens (Config.StopTokens, BOS by default) and stop strings end a choice with
//     finish_reason "stop"; neither is part of the text. Stop strings are matched on the
//     decoded text; while streaming, text that could be the start of a stop string is held
//     back until it is known not to be one, so streamed text is never taken back. When
//     every choice has stopped, the engine request is cancelled.
//   - Usage: prompt_tokens counts the prompt with BOS; completion_tokens counts the tokens
//     generated for all choices up to each one's end (a stop string's tokens included, a
//     stop token not); total_tokens is their sum.
//   - Streaming: server-sent events, one "data: {json}" frame per delta, chat's first frame
//     per choice carrying the role; with stream_options.include_usage a last frame with no
//     choices and the usage; then "data: [DONE]". An error after the stream started is
//     sent as a frame {"error": {...}} and the stream ends without [DONE].
//
// # Chat template
//
// Models without a chat template of their own (the llama2.c story models have none) use
// PlainTemplate: the messages' texts in order, joined by one newline, roles not written:
//
//	[{"role":"system","content":"A"},{"role":"user","content":"B"}]  →  "A\nB"
//
// A base model continues text, so a chat of one user message generates what a completion
// of that message's text would. Config.ChatTemplate replaces it.
//
// # Errors
//
// Every error is an OpenAI-style body {"error": {"message", "type", "param", "code"}}:
// 400 for malformed JSON, wrong types, bad values (max_tokens <= 0, temperature < 0,
// top_p outside [0, 1], n outside [1, MaxN], empty stop strings, unsupported options) and
// prompts or max_tokens past the context (code "context_length_exceeded"); 404 for an
// unknown model (code "model_not_found") or path; 405 for a wrong method; 413 for a body
// over MaxBodyBytes; 429 with Retry-After when the engine's queue is full; 503 with
// Retry-After while not ready or draining, and when nothing can serve the request
// (engine.ErrUnavailable: no pipeline in a cluster) or its pipeline failed before the
// first token (engine.ErrPipeline); 500 when a generation fails otherwise.
//
// # Lifecycle
//
// A request's generation runs under a context that ends when the client disconnects or
// when Drain gives up waiting; the Generator then aborts it and frees its KV blocks, and
// the handler reads the event channel to its close before returning, so a finished
// handler has no request left in the engine. Drain turns new generations away with 503
// and waits for the running ones; Shutdown drains and then shuts the http.Server down.
//
// # Metrics
//
// kvmesh_http_requests_total{endpoint,code}, kvmesh_http_generations_in_flight,
// kvmesh_time_to_first_token_seconds{endpoint} (arrival to first token),
// kvmesh_time_per_output_token_seconds{endpoint} (between consecutive tokens of a
// choice), kvmesh_generation_tokens_total, kvmesh_prompt_tokens_total and
// kvmesh_http_request_duration_seconds{endpoint}, in Config.Registry, which the engine
// shares for its own series. Code 499 counts requests whose client left before any
// response.
package api
