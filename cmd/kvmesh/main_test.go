package main

import "flag"

// update makes golden-file tests rewrite their files in testdata instead of comparing:
// go test ./cmd/kvmesh -run NAME -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata")
