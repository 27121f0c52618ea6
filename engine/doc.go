// Package engine schedules the generations of one pipeline: waiting, running and swapped
// queues, continuous batching, chunked prefill, admission against free KV blocks,
// preemption, and automatic prefix caching.
package engine
