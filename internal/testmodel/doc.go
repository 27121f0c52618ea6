// Package testmodel opens the shipped stories260K model once per test binary, for the
// tests of the packages that run it (the model package's own tests open it themselves:
// this package imports model).
package testmodel
