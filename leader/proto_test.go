package leader

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestProtoUpToDate: the committed generated code is what scripts/proto.sh makes from the
// .proto files now. Skipped where protoc is not installed (the script would install it).
func TestProtoUpToDate(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc not installed; scripts/proto.sh installs it")
	}
	if testing.Short() {
		t.Skip("builds the protoc plugins")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", "../scripts/proto.sh", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/proto.sh: %v\n%s", err, msg)
	}
	generated, err := filepath.Glob(filepath.Join(out, "kvmesh", "v1", "*.pb.go"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("nothing generated (%v)", err)
	}
	committed, _ := filepath.Glob("../proto/kvmesh/v1/*.pb.go")
	if len(committed) != len(generated) {
		t.Errorf("%d generated files, %d committed", len(generated), len(committed))
	}
	for _, g := range generated {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join("../proto/kvmesh/v1", filepath.Base(g))
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run scripts/proto.sh", name)
		}
	}
}
