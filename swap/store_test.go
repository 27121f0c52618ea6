package swap

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	tests := []struct {
		name    string
		key     Key
		meta    Meta
		payload []byte
	}{
		{"prefix block 20KB", testKey(1), testMeta(1), testPayload(1, 20480)},
		{"private block", testKey(2), Meta{Kind: KindPrivate, DType: 2, Encoding: EncodingInt8, Tokens: []int32{7, -1, 1 << 30}}, testPayload(2, 4096)},
		{"empty payload no tokens", testKey(3), Meta{}, nil},
		{"one byte", testKey(4), testMeta(4), []byte{0xff}},
		{"1.18MB block", testKey(5), testMeta(5), testPayload(5, 2*12*768*16*4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(ctx, tt.key, tt.meta, tt.payload); err != nil {
				t.Fatal(err)
			}
			m, p, err := s.Get(ctx, tt.key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, tt.payload) {
				t.Errorf("payload differs")
			}
			if !metaEqual(m, tt.meta) {
				t.Errorf("meta = %+v, want %+v", m, tt.meta)
			}
		})
	}
	if _, _, err := s.Get(ctx, testKey(99), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}
	st := s.Stats()
	if st.Entries != int64(len(tests)) || st.Corrupt != 0 {
		t.Errorf("Stats = %+v", st)
	}
	var want int64
	for _, tt := range tests {
		want += int64(len(tt.payload))
	}
	if st.BytesWritten != want || st.BytesRead != want {
		t.Errorf("BytesWritten %d BytesRead %d, want %d", st.BytesWritten, st.BytesRead, want)
	}
}

func metaEqual(a, b Meta) bool {
	return a.Parent == b.Parent && a.Kind == b.Kind && a.DType == b.DType && a.Encoding == b.Encoding &&
		slices.Equal(a.Tokens, b.Tokens)
}

func TestGetReusesDst(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	want := testPayload(1, 20480)
	if err := s.Put(ctx, testKey(1), testMeta(1), want); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 20480)
	_, got, err := s.Get(ctx, testKey(1), dst)
	if err != nil || !bytes.Equal(got, want) || &got[0] != &dst[:1][0] {
		t.Fatalf("Get did not fill dst in place: err %v", err)
	}
}

func TestRangeDeleteReopen(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var es []Entry
	for i := range n {
		es = append(es, Entry{Key: testKey(i), Meta: testMeta(i), Payload: testPayload(uint64(i), 1000+i)})
	}
	if err := s.PutBatch(ctx, es); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 5 {
		if err := s.Delete(ctx, testKey(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, testKey(0)); err != nil { // again: not an error
		t.Fatalf("second Delete: %v", err)
	}
	listed := map[Key]Meta{}
	if err := s.Range(func(k Key, m Meta) bool { listed[k] = m; return true }); err != nil {
		t.Fatal(err)
	}
	checkListed := func(listed map[Key]Meta) {
		t.Helper()
		if len(listed) != n-n/5 {
			t.Fatalf("Range listed %d entries, want %d", len(listed), n-n/5)
		}
		for i := range n {
			m, ok := listed[testKey(i)]
			if ok != (i%5 != 0) {
				t.Fatalf("entry %d listed %v", i, ok)
			}
			if ok && !metaEqual(m, testMeta(i)) {
				t.Fatalf("entry %d meta %+v", i, m)
			}
		}
	}
	checkListed(listed)
	before := s.Stats()
	checkInvariants(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, testKey(1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}

	// Warm restart: the same entries, same counters, payloads bit-identical.
	s2 := openTest(t, cfg)
	after := s2.Stats()
	if after.Entries != before.Entries || after.StoredBytes != before.StoredBytes {
		t.Errorf("after reopen Stats %+v, before %+v", after, before)
	}
	listed = map[Key]Meta{}
	if err := s2.Range(func(k Key, m Meta) bool { listed[k] = m; return true }); err != nil {
		t.Fatal(err)
	}
	checkListed(listed)
	for i := 1; i < n; i++ {
		if i%5 == 0 {
			continue
		}
		_, p, err := s2.Get(ctx, testKey(i), nil)
		if err != nil || !bytes.Equal(p, es[i].Payload) {
			t.Fatalf("entry %d after reopen: %v", i, err)
		}
	}
	// Range stops when fn returns false.
	calls := 0
	_ = s2.Range(func(Key, Meta) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Errorf("Range called fn %d times after it returned false, want 3", calls)
	}
}

func TestBatchGet(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	var es []Entry
	for i := range 10 {
		es = append(es, Entry{Key: testKey(i), Meta: testMeta(i), Payload: testPayload(uint64(i), 512)})
	}
	if err := s.PutBatch(ctx, es); err != nil {
		t.Fatal(err)
	}
	gets := []Entry{{Key: testKey(3)}, {Key: testKey(42)}, {Key: testKey(9)}}
	if err := s.GetBatch(ctx, gets); err != nil {
		t.Fatal(err)
	}
	if gets[0].Err != nil || !bytes.Equal(gets[0].Payload, es[3].Payload) || !metaEqual(gets[0].Meta, es[3].Meta) {
		t.Errorf("entry 3: %v", gets[0].Err)
	}
	if !errors.Is(gets[1].Err, ErrNotFound) {
		t.Errorf("missing entry: %v", gets[1].Err)
	}
	if gets[2].Err != nil || !bytes.Equal(gets[2].Payload, es[9].Payload) {
		t.Errorf("entry 9: %v", gets[2].Err)
	}
	// A repeated key in one batch keeps the last entry and counts once.
	dup := []Entry{{Key: testKey(100), Payload: []byte("a")}, {Key: testKey(100), Payload: []byte("bb")}}
	if err := s.PutBatch(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if _, p, err := s.Get(ctx, testKey(100), nil); err != nil || string(p) != "bb" {
		t.Errorf("duplicate key: %q %v", p, err)
	}
}

func TestCancelledContext(t *testing.T) {
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, testKey(1), Meta{}, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: %v", err)
	}
	if _, _, err := s.Get(ctx, testKey(1), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v", err)
	}
	if s.Stats().Entries != 0 {
		t.Error("a cancelled Put stored something")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Path: "p", Identity: "i"}, true},
		{"no path", Config{Identity: "i"}, false},
		{"no identity", Config{Path: "p"}, false},
		{"negative max", Config{Path: "p", Identity: "i", MaxBytes: -1}, false},
		{"negative timeout", Config{Path: "p", Identity: "i", LockTimeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if (err == nil) != tt.ok {
				t.Fatalf("validate: %v", err)
			}
			if tt.ok && (tt.cfg.Logger == nil || tt.cfg.LockTimeout == 0) {
				t.Error("defaults not filled")
			}
		})
	}
	if d := DefaultConfig("p", "i"); d.LockTimeout == 0 || d.Logger == nil || d.NoSync || d.MaxBytes != 0 {
		t.Errorf("DefaultConfig = %+v", d)
	}
}

// TestAgainstModel applies random operations to the store and to a map and
// compares them, reopening the file now and then (STYLE 13).
func TestAgainstModel(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	cfg.MaxBytes = 40_000
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { checkInvariants(t, s); _ = s.Close() }()
	model := map[Key][]byte{}
	used := func() (n int64) {
		for _, p := range model {
			n += int64(valueSize(&Meta{}, len(p)))
		}
		return n
	}
	r := rand.New(rand.NewPCG(7, 7))
	for step := range 600 {
		k := testKey(r.IntN(40))
		switch op := r.IntN(10); {
		case op < 4:
			p := testPayload(uint64(step), r.IntN(3000))
			old, had := model[k]
			next := used() + int64(valueSize(&Meta{}, len(p)))
			if had {
				next -= int64(valueSize(&Meta{}, len(old)))
			}
			err := s.Put(ctx, k, Meta{}, p)
			if wantFull := next > cfg.MaxBytes; wantFull != errors.Is(err, ErrFull) || (!wantFull && err != nil) {
				t.Fatalf("step %d: Put: %v (model says full: %v)", step, err, wantFull)
			}
			if err == nil {
				model[k] = p
			}
		case op < 8:
			_, p, err := s.Get(ctx, k, nil)
			want, ok := model[k]
			if ok && (err != nil || !bytes.Equal(p, want)) || !ok && !errors.Is(err, ErrNotFound) {
				t.Fatalf("step %d: Get: %v (model has it: %v)", step, err, ok)
			}
		case op < 9:
			if err := s.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		default:
			checkInvariants(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(ctx, cfg); err != nil {
				t.Fatal(err)
			}
		}
		if st := s.Stats(); st.Entries != int64(len(model)) || st.StoredBytes != used() {
			t.Fatalf("step %d: Stats %+v, model %d entries %d bytes", step, st, len(model), used())
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				k := testKey(w*1000 + i)
				p := testPayload(uint64(w*1000+i), 2048)
				if err := s.Put(ctx, k, testMeta(i), p); err != nil {
					t.Error(err)
					return
				}
				if _, got, err := s.Get(ctx, k, nil); err != nil || !bytes.Equal(got, p) {
					t.Errorf("worker %d entry %d: %v", w, i, err)
					return
				}
				if i%3 == 0 {
					if err := s.Delete(ctx, k); err != nil {
						t.Error(err)
					}
				}
				_ = s.Range(func(Key, Meta) bool { return true })
			}
		})
	}
	wg.Wait()
	if got, want := s.Stats().Entries, int64(4*(50-17)); got != want {
		t.Errorf("Entries %d, want %d", got, want)
	}
}

func TestPutRejectsTooManyTokens(t *testing.T) {
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	m := Meta{Tokens: make([]int32, MaxTokens+1)}
	if err := s.Put(context.Background(), testKey(1), m, nil); err == nil {
		t.Fatal("Put with MaxTokens+1 tokens succeeded")
	}
	m.Tokens = m.Tokens[:MaxTokens]
	if err := s.Put(context.Background(), testKey(1), m, nil); err != nil {
		t.Fatalf("Put with MaxTokens tokens: %v", err)
	}
	if st := s.Stats(); st.FileBytes <= 0 || st.Entries != 1 {
		t.Errorf("Stats %+v", st)
	}
}

// TestPrune: Prune deletes the entries keep refuses, returns the others' keys, and what
// it deleted is gone after a reopen.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	s := openTest(t, cfg)
	const n = 20
	var es []Entry
	for i := range n {
		m := testMeta(i)
		if i%3 == 0 {
			m.DType = 2 // another KV type: to drop
		}
		es = append(es, Entry{Key: testKey(i), Meta: m, Payload: testPayload(uint64(i), 100)})
	}
	if err := s.PutBatch(ctx, es); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Prune(ctx, func(_ Key, m Meta) bool { return m.DType == 1 })
	if err != nil {
		t.Fatal(err)
	}
	want := map[Key]bool{}
	for i := range n {
		if i%3 != 0 {
			want[testKey(i)] = true
		}
	}
	if len(kept) != len(want) {
		t.Fatalf("kept %d keys, want %d", len(kept), len(want))
	}
	for _, k := range kept {
		if !want[k] {
			t.Errorf("kept %v, which keep refused", k)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	listed := 0
	if err := s.Range(func(_ Key, m Meta) bool {
		listed++
		if m.DType != 1 {
			t.Errorf("an entry of type %d survived the prune", m.DType)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if listed != len(want) {
		t.Errorf("%d entries after reopening, want %d", listed, len(want))
	}
}
