package preset

import (
	"errors"
	"testing"
)

func TestPresetsValid(t *testing.T) {
	for _, p := range All() {
		if err := p.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name    string
		headSz  int
		kvDim   int
		wantErr bool
	}{
		{"llama-7b", 128, 4096, false},
		{"LLaMA-70B", 128, 1024, false},
		{"tinyllama-1.1b", 64, 256, false},
		{"stories260k", 8, 32, false},
		{"gpt-2", 0, 0, true},
	}
	for _, tt := range tests {
		p, err := Lookup(tt.name)
		if tt.wantErr {
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("Lookup(%q) error = %v, want ErrUnknown", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Lookup(%q): %v", tt.name, err)
		}
		if p.HeadSize() != tt.headSz || p.KVDim() != tt.kvDim {
			t.Errorf("%s: head size %d kv dim %d, want %d %d", tt.name, p.HeadSize(), p.KVDim(), tt.headSz, tt.kvDim)
		}
	}
}

func TestParams110M(t *testing.T) {
	p, _ := Lookup("llama2c-110m")
	// 110M with a shared classifier: subtract one vocab*dim.
	shared := p.Params() - int64(p.Vocab*p.Dim)
	if shared < 100e6 || shared > 120e6 {
		t.Errorf("llama2c-110m has %d parameters, want about 110M", shared)
	}
}
