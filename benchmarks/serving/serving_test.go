package serving

import (
	"context"
	"errors"
	"testing"

	"github.com/kvmesh/kvmesh/internal/testmodel"

	"github.com/kvmesh/kvmesh/model"
)

func loadModel(t testing.TB) *model.Model { return testmodel.Load(t) }

// smallMix is a workload that runs in about a second on stories260K.
func smallMix() Mix {
	return Mix{Requests: 16, PromptMin: 8, PromptMax: 80, MaxTokensMin: 4, MaxTokensMax: 48, Seed: 3}
}

func TestConfigErrors(t *testing.T) {
	m := loadModel(t) // context 512
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"mix past the context", func() error {
			_, err := Waste(context.Background(), m, WasteConfig{Mix: Mix{PromptMax: 300, MaxTokensMax: 300}})
			return err
		}},
		{"mix with inverted prompt range", func() error {
			_, err := Static(context.Background(), m, StaticConfig{Mix: Mix{PromptMin: 50, PromptMax: 10}})
			return err
		}},
		{"static budget under one context", func() error {
			_, err := Static(context.Background(), m, StaticConfig{Batch: 1, Mix: Mix{PromptMax: 32, MaxTokensMax: 32}})
			return err
		}},
		{"ttft with one request", func() error {
			_, err := TTFT(context.Background(), m, TTFTConfig{PrefixTokens: 64, Requests: 1})
			return err
		}},
		{"ttft past the context", func() error {
			_, err := TTFT(context.Background(), m, TTFTConfig{})
			return err
		}},
		{"swap prefix not a multiple of the block size", func() error {
			_, err := Swap(context.Background(), m, SwapConfig{PrefixTokens: 100})
			return err
		}},
		{"swap working set too small", func() error {
			_, err := Swap(context.Background(), m, SwapConfig{Groups: 2, PrefixTokens: 64})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}
