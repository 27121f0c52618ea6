// Package reftest loads the reference generations of llama2.c's run.c
// (testdata/reference/stories260K_greedy.json) and names the shipped model files, for the
// tests of every package: one definition of a reference case, found from any test's
// working directory.
package reftest
