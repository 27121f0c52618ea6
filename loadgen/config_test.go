package loadgen

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.URL = "http://127.0.0.1:8080"
	tests := []struct {
		name string
		edit func(*Config)
		bad  bool
	}{
		{"defaults", func(*Config) {}, false},
		{"open loop", func(c *Config) { c.Rate = 5; c.Concurrency = 2 }, false},
		{"shared prefix", func(c *Config) { c.Prompts = PromptSet{Kind: PromptsSharedPrefix} }, false},
		{"no URL", func(c *Config) { c.URL = "" }, true},
		{"URL without scheme", func(c *Config) { c.URL = "127.0.0.1:8080" }, true},
		{"URL of another scheme", func(c *Config) { c.URL = "ftp://x" }, true},
		{"negative rate", func(c *Config) { c.Rate = -1 }, true},
		{"infinite rate", func(c *Config) { c.Rate = math.Inf(1) }, true},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, true},
		{"negative requests", func(c *Config) { c.Requests = -1 }, true},
		{"negative warmup", func(c *Config) { c.Warmup = -1 }, true},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, true},
		{"negative max tokens", func(c *Config) { c.MaxTokens = -1 }, true},
		{"token range", func(c *Config) { c.MinTokens, c.MaxTokens = 4, 8 }, false},
		{"min tokens > max", func(c *Config) { c.MinTokens, c.MaxTokens = 9, 8 }, true},
		{"negative temperature", func(c *Config) { c.Temperature = -0.5 }, true},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, true},
		{"unknown prompt kind", func(c *Config) { c.Prompts.Kind = "poems" }, true},
		{"min > max words", func(c *Config) { c.Prompts.MinWords, c.Prompts.MaxWords = 9, 3 }, true},
		{"zero groups", func(c *Config) { c.Prompts = PromptSet{Kind: PromptsSharedPrefix, Groups: -1} }, true},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		err := c.validate()
		if tt.bad != (err != nil) || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: validate = %v, want bad=%v (ErrConfig)", tt.name, err, tt.bad)
		}
	}
	var zero Config
	zero.URL = "http://h:1"
	if err := zero.validate(); err != nil {
		t.Fatal(err)
	}
	if zero.Requests != 100 || zero.MaxTokens != 64 || zero.Timeout != 2*time.Minute || zero.Model != "" ||
		zero.Prompts.Kind != PromptsRandom || zero.Prompts.MinWords != 8 || zero.Prompts.MaxWords != 64 {
		t.Fatalf("zero config not filled with defaults: %+v", zero)
	}
	if d := DefaultConfig(); !d.Stream || !d.IncludeUsage || d.Concurrency != 0 || d.Rate != 0 {
		t.Fatalf("DefaultConfig: %+v", d)
	}
}
