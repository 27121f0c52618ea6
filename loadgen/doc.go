// Package loadgen drives a kvmesh server (or any OpenAI-style completions endpoint) with a
// stream of generation requests and measures what a client sees: time to first token
// (TTFT), time per output token (TPOT), inter-token latency (ITL), end-to-end latency
// (E2E), and request and token throughput.
//
// A run is Run(ctx, cfg): it builds a deterministic prompt set from cfg.Prompts and
// cfg.Seed, sends cfg.Requests requests to POST {URL}/v1/completions, either open loop
// (Poisson arrivals at cfg.Rate requests per second, optionally capped at cfg.Concurrency
// requests in flight) or closed loop (cfg.Concurrency workers, each sending its next
// request when the previous one ends), and returns a Report of per-request Records and
// their Summary. cfg.Warmup requests go first, one at a time, and are not recorded. The
// Report renders as a text table, as JSON, and as PNG plots, and compares with a saved
// report (Compare).
//
// Wire format. Each request is POST /v1/completions with a JSON body of model, prompt,
// max_tokens, temperature, seed and stream (plus stream_options.include_usage when
// streaming, and ignore_eos when asked). A streamed answer is server-sent events, each
// "data: {json}" a completion chunk whose choices[0].text is the next piece of text, one
// with finish_reason set, optionally one with usage, then "data: [DONE]". A chunk counts
// as a token when its text is not empty or it has no finish_reason; the usage object, when
// present, gives the exact counts. A 429 answer is a rejection, retried after its
// Retry-After header when Config.RetryRejected says so. Only choices[0] is read (n = 1).
//
// Invariants and rules:
//
//   - Timing is of bytes as they arrive: the client reads the response body itself and
//     stamps every server-sent event with the time of the read that completed it, so a
//     token's time is never earlier than the bytes that carried it. Events completed by
//     the same read share one time stamp (an inter-token latency of zero is real then).
//   - All times in a Record are offsets from the start of the run (monotonic clock);
//     TTFT and E2E are measured from the request's first send (Record.Start), so the time
//     spent waiting out 429 responses counts as latency; queueing behind the client's own
//     concurrency cap is visible as Start − Scheduled and does not.
//   - A run always stops: at most cfg.Warmup + cfg.Requests requests are sent; no
//     measured request is started after cfg.Duration has passed; each request, retries included, ends within
//     cfg.Timeout; cancelling ctx aborts the requests in flight.
//   - The same Config (Seed included) yields the same prompts, the same arrival schedule
//     and the same per-request sampling seeds (request i sends seed Seed+i).
//   - Statistics are over successful requests only; failures are counted by kind
//     (see ErrorKind). TTFT needs a streamed token, TPOT two tokens, ITL two token
//     chunks; a request that generated nothing, or did not stream, contributes E2E only.
//   - Percentiles interpolate linearly between order statistics (numpy's default), so
//     p50 ≤ p90 ≤ p99 ≤ max always holds.
package loadgen
