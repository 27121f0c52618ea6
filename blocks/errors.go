package blocks

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned errors wrap them
// with context.
var (
	// ErrUnknownDType: a storage type name or value that is not fp32, fp16, int8 or int4.
	ErrUnknownDType = errors.New("blocks: unknown storage type")
	// ErrBadConfig: a Config that New cannot build a cache from.
	ErrBadConfig = errors.New("blocks: invalid config")
	// ErrBadPayload: bytes given to ImportBlock that are not one block of this cache's
	// Config (a different shape or storage type wrote them).
	ErrBadPayload = errors.New("blocks: block payload does not fit this cache")
)
