package swap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"syscall"
	"testing"
	"time"
)

// Block shapes of 16-token fp32 blocks, K and V: 2 × layers × kvDim × 16 × 4
// bytes. Batches: one block, a batch within the Store's kept 8 MiB encode
// buffer, and 32 blocks.
var benchShapes = []struct {
	name    string
	bytes   int
	batches []int
}{
	{"stories260K", 2 * 5 * 32 * 16 * 4, []int{1, 32}},       // 20 KiB
	{"llama2c-110m", 2 * 12 * 768 * 16 * 4, []int{1, 6, 32}}, // 1.18 MB
}

// cpuTime returns the CPU time (user + system) the process has used. The
// machine these benchmarks ran on was shared, so wall time per op says as
// much about the neighbours as about the store; CPU time per op does not.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start, as cpu-µs/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e3, "cpu-µs/op")
}

func BenchmarkChecksum(b *testing.B) {
	for _, sh := range benchShapes {
		p := testPayload(1, sh.bytes)
		b.Run("crc32c/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				_ = crc32.Checksum(p, crcTable)
			}
		})
		b.Run("sha256/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				_ = sha256.Sum256(p)
			}
		})
	}
}

// benchStore opens a store in a temp dir on the default file system.
func benchStore(b *testing.B, noSync bool) *Store {
	cfg, _ := testConfig(b)
	cfg.NoSync = noSync
	return openTest(b, cfg)
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, sh := range benchShapes {
		for _, batch := range sh.batches {
			for _, noSync := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/batch=%d/nosync=%v", sh.name, batch, noSync), func(b *testing.B) {
					s := benchStore(b, noSync)
					es := make([]Entry, batch)
					for i := range es {
						es[i] = Entry{Meta: testMeta(i), Payload: testPayload(uint64(i), sh.bytes)}
					}
					// A working set of 64 keys: steady state overwrites, so
					// the file stops growing and the page cache holds it.
					b.SetBytes(int64(batch * sh.bytes))
					n := 0
					start := cpuTime(b)
					for b.Loop() {
						for i := range es {
							es[i].Key = testKey(n % 64)
							n++
						}
						if err := s.PutBatch(ctx, es); err != nil {
							b.Fatal(err)
						}
					}
					reportCPU(b, start)
				})
			}
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, sh := range benchShapes {
		for _, batch := range sh.batches {
			b.Run(fmt.Sprintf("%s/batch=%d", sh.name, batch), func(b *testing.B) {
				s := benchStore(b, true)
				const keys = 64
				for i := range keys {
					if err := s.Put(ctx, testKey(i), testMeta(i), testPayload(uint64(i), sh.bytes)); err != nil {
						b.Fatal(err)
					}
				}
				es := make([]Entry, batch)
				for i := range es {
					es[i].Payload = make([]byte, 0, sh.bytes)
				}
				b.SetBytes(int64(batch * sh.bytes))
				n := 0
				start := cpuTime(b)
				for b.Loop() {
					for i := range es {
						es[i].Key = testKey(n % keys)
						n++
					}
					if err := s.GetBatch(ctx, es); err != nil {
						b.Fatal(err)
					}
					for i := range es {
						if es[i].Err != nil {
							b.Fatal(es[i].Err)
						}
					}
				}
				reportCPU(b, start)
			})
		}
	}
}

func BenchmarkInt8(b *testing.B) {
	for _, sh := range benchShapes {
		x := kvLike(1, sh.bytes/4)
		enc := EncodeInt8(nil, x, 32)
		dec := make([]float32, 0, len(x))
		b.Run("encode/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(sh.bytes))
			for b.Loop() {
				enc = EncodeInt8(enc, x, 32)
			}
		})
		b.Run("decode/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(sh.bytes))
			for b.Loop() {
				dec, _ = DecodeInt8(dec, enc, 32)
			}
		})
	}
}

// BenchmarkOpen measures a warm restart: Open of a file holding 1000
// stories260K blocks (the scan that rebuilds the counters) and a Range.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	cfg, _ := testConfig(b)
	writeN := func() {
		s, err := Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		es := make([]Entry, 1000)
		for i := range es {
			es[i] = Entry{Key: testKey(i), Meta: testMeta(i), Payload: testPayload(uint64(i), benchShapes[0].bytes)}
		}
		if err := s.PutBatch(ctx, es); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	writeN()
	for b.Loop() {
		s, err := Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		_ = s.Range(func(Key, Meta) bool { n++; return true })
		if n != 1000 {
			b.Fatalf("%d entries", n)
		}
		_ = s.Close()
	}
}
