package cluster

import (
	"errors"
	"testing"
)

func TestConfigFor(t *testing.T) {
	c, err := ConfigFor("127.0.0.1:7946", "a:1, b:2,,", "0123456789abcdef", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.BindAddr != "127.0.0.1" || c.BindPort != 7946 || len(c.Seeds) != 2 || c.Seeds[1] != "b:2" || string(c.SecretKey) != "0123456789abcdef" {
		t.Errorf("ConfigFor gave %+v", c)
	}
	for _, bad := range []string{"nohost", "127.0.0.1:x"} {
		if _, err := ConfigFor(bad, "", "", false); !errors.Is(err, ErrBadConfig) {
			t.Errorf("bind %q: error %v, want ErrBadConfig", bad, err)
		}
	}
}

func TestSameModel(t *testing.T) {
	accept := SameModel("abc")
	if err := accept(Meta{ID: "w", Model: "abc"}); err != nil {
		t.Error(err)
	}
	if err := accept(Meta{ID: "w"}); err != nil {
		t.Errorf("a peer without a model (a router starting) was refused: %v", err)
	}
	if err := accept(Meta{ID: "w", Model: "xyz"}); err == nil {
		t.Error("a peer of another model was accepted")
	}
}
