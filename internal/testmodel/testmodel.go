package testmodel

import (
	"sync"
	"testing"

	"github.com/kvmesh/kvmesh/internal/reftest"
	"github.com/kvmesh/kvmesh/model"
	"github.com/kvmesh/kvmesh/model/ckpt"
)

var (
	once sync.Once // guards m and err
	m    *model.Model
	err  error
)

// Load returns the shipped model, opened on first use and kept open for the test binary.
func Load(t testing.TB) *model.Model {
	t.Helper()
	once.Do(func() {
		var ck *ckpt.Checkpoint
		if ck, err = ckpt.Open(reftest.Model); err == nil {
			m, err = model.New(ck)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
