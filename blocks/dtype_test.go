package blocks

import (
	"errors"
	"testing"
)

func TestParseDType(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DType
		err  error
	}{
		{"fp32", FP32, nil},
		{"fp16", FP16, nil},
		{"int8", Int8, nil},
		{"int4", Int4, nil},
		{"", 0, ErrUnknownDType},
		{"FP32", 0, ErrUnknownDType},
		{"bf16", 0, ErrUnknownDType},
		{"int2", 0, ErrUnknownDType},
	} {
		got, err := ParseDType(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseDType(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	if s := DType(9).String(); s != "DType(9)" {
		t.Errorf("DType(9).String() = %q", s)
	}
}

func TestBlockBytes(t *testing.T) {
	s := Shape{Layers: 5, KVHeads: 4, HeadSize: 8, BlockSize: 16} // stories260K
	const elems = 2 * 5 * 4 * 16 * 8
	const rows = 2 * 5 * 4 * 16
	for _, tc := range []struct {
		d    DType
		want int
	}{
		{FP32, 4 * elems},
		{FP16, 2 * elems},
		{Int8, elems + 4*rows},
		{Int4, elems/2 + 4*rows},
	} {
		if got := s.BlockBytes(tc.d); got != tc.want {
			t.Errorf("BlockBytes(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(8, FP32)
	for _, tc := range []struct {
		name   string
		change func(*Config)
		err    error
	}{
		{"ok", func(*Config) {}, nil},
		{"default block size", func(c *Config) { c.BlockSize = 0 }, nil},
		{"unknown dtype", func(c *Config) { c.DType = 4 }, ErrUnknownDType},
		{"no layers", func(c *Config) { c.Layers = 0 }, ErrBadConfig},
		{"negative heads", func(c *Config) { c.KVHeads = -1 }, ErrBadConfig},
		{"no head size", func(c *Config) { c.HeadSize = 0 }, ErrBadConfig},
		{"negative block size", func(c *Config) { c.BlockSize = -16 }, ErrBadConfig},
		{"no blocks", func(c *Config) { c.NumBlocks = 0 }, ErrBadConfig},
		{"odd head size int4", func(c *Config) { c.DType, c.HeadSize = Int4, 7 }, ErrBadConfig},
		{"odd head size int8", func(c *Config) { c.DType, c.HeadSize = Int8, 7 }, nil},
		{"too large", func(c *Config) { c.NumBlocks, c.Layers = 1<<30, 1<<30 }, ErrBadConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			c, err := New(cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("New: %v, want %v", err, tc.err)
			}
			want := cfg.BlockSize
			if want == 0 {
				want = DefaultBlockSize
			}
			if err == nil && c.BlockSize() != want {
				t.Errorf("BlockSize %d, want %d", c.BlockSize(), want)
			}
		})
	}
	if d := DefaultConfig(); d.BlockSize != 16 || d.DType != FP32 {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}
