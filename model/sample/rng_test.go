package sample

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// naiveStream is run.c's random_u32/random_f32 written out plainly: n draws from seed,
// stepping the state once per draw. It is the independent implementation Coin is checked
// against.
func naiveStream(seed uint64, n int) (u []uint32, f []float32) {
	state := seed
	for range n {
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		r := uint32((state * 0x2545F4914F6CDD1D) >> 32)
		u = append(u, r)
		f = append(f, float32(r>>8)/16777216.0)
	}
	return u, f
}

var goldenSeeds = []uint64{42, 7, 133742}

// goldenDraws are the draw indices recorded in the golden file for each seed.
var goldenDraws = []int{0, 1, 2, 3, 4, 5, 6, 7, 100, 1000, 99999}

func TestCoinGolden(t *testing.T) {
	path := filepath.Join("testdata", "coins.golden")
	var b strings.Builder
	fmt.Fprintln(&b, "# run.c random_f32 draws: seed k u32 coin (from naiveStream; regenerate with -update)")
	for _, seed := range goldenSeeds {
		u, f := naiveStream(seed, goldenDraws[len(goldenDraws)-1]+1)
		for _, k := range goldenDraws {
			fmt.Fprintf(&b, "%d %d %d %.9g\n", seed, k, u[k], f[k])
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	lines := 0
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		var seed uint64
		var k int
		var u uint32
		var want float32
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %d %g", &seed, &k, &u, &want); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		if got := Coin(seed, k); got != want || got != float32(u>>8)/16777216.0 {
			t.Errorf("Coin(%d, %d) = %.9g, golden %.9g (u32 %d)", seed, k, got, want, u)
		}
		lines++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != len(goldenSeeds)*len(goldenDraws) {
		t.Errorf("%s has %d draws, want %d", path, lines, len(goldenSeeds)*len(goldenDraws))
	}
}

// TestCoinByHand checks the first draws against values computed outside Go (Python,
// arbitrary-precision integers masked to 64 bits) from run.c's algorithm.
func TestCoinByHand(t *testing.T) {
	tests := []struct {
		seed uint64
		u32  []uint32
	}{
		{42, []uint32{1456360119, 3359763283, 3393612768, 4054632243}},
		{7, []uint32{3522932607, 3986975863, 383753578, 462256277}},
		{133742, []uint32{3033531262, 2674377904, 2312864567, 2287415643}},
	}
	for _, tt := range tests {
		for k, u := range tt.u32 {
			want := float32(u>>8) / 16777216.0
			if got := Coin(tt.seed, k); got != want {
				t.Errorf("Coin(%d, %d) = %.9g, want %.9g", tt.seed, k, got, want)
			}
		}
	}
	if got := Coin(42, 0); got != 0.3390852212905884 {
		t.Errorf("Coin(42, 0) = %.17g, want 0.3390852212905884", got)
	}
}

func TestCoinJumpMatchesStepping(t *testing.T) {
	for _, seed := range []uint64{1, 42, 7, 133742, 1 << 63, ^uint64(0), DefaultSeed} {
		_, f := naiveStream(seed, 3000)
		for k := range f {
			if got := Coin(seed, k); got != f[k] {
				t.Fatalf("Coin(%d, %d) = %v, stepping gives %v", seed, k, got, f[k])
			}
		}
	}
}

func TestCoinRange(t *testing.T) {
	for k := range 10000 {
		if c := Coin(133742, k); c < 0 || c >= 1 {
			t.Fatalf("Coin(133742, %d) = %v, outside [0, 1)", k, c)
		}
	}
}

func TestCoinSeedZero(t *testing.T) {
	for k := range 10 {
		if Coin(0, k) != Coin(DefaultSeed, k) {
			t.Fatalf("Coin(0, %d) differs from Coin(DefaultSeed, %d)", k, k)
		}
	}
}

func TestCoinNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Coin(1, -1) did not panic")
		}
	}()
	Coin(1, -1)
}

func BenchmarkCoin(b *testing.B) {
	for _, k := range []int{0, 50, 4096, 100000} {
		b.Run(fmt.Sprint("k=", k), func(b *testing.B) {
			for b.Loop() {
				Coin(42, k)
			}
		})
	}
}
