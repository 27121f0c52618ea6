package sample

import "errors"

// ErrParams is returned (wrapped) by Params.Validate for a temperature or top-p that
// sampling cannot use.
var ErrParams = errors.New("invalid sampling parameters")
