package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kvmesh/kvmesh/model/preset"
)

func init() {
	register("memcalc", "KV-cache memory of a model shape", runMemcalc)
}

// errUnknownDtype is returned for a --dtype that is not a KV storage type.
var errUnknownDtype = errors.New("unknown dtype")

// errTooLarge is returned when a size does not fit in 63 bits.
var errTooLarge = errors.New("size overflows int64")

// kvDtype is a storage type of cached keys and values.
type kvDtype struct {
	name   string
	bits   int64 // per element: 32, 16, 8, 4 (4, 2, 1, 0.5 bytes)
	scaled bool  // quantized: one fp32 scale per token, KV head and layer, for K and for V
}

// kvDtypes are the storage types, widest first.
var kvDtypes = []kvDtype{
	{name: "fp32", bits: 32},
	{name: "fp16", bits: 16},
	{name: "int8", bits: 8, scaled: true},
	{name: "int4", bits: 4, scaled: true},
}

// scaleBytes is the size of one quantization scale (an fp32).
const scaleBytes = 4

func lookupDtype(name string) (kvDtype, error) {
	for _, d := range kvDtypes {
		if strings.EqualFold(d.name, name) {
			return d, nil
		}
	}
	return kvDtype{}, fmt.Errorf("%w %q (known: fp32, fp16, int8, int4)", errUnknownDtype, name)
}

func (d kvDtype) elementBytes() float64 { return float64(d.bits) / 8 }

// kvShape is what the KV cache's size depends on.
type kvShape struct {
	Name     string `json:"name"`
	Layers   int64  `json:"layers"`
	Heads    int64  `json:"heads"`    // query heads; the MHA comparison uses this many KV heads
	KVHeads  int64  `json:"kv_heads"` // key/value heads actually cached
	HeadSize int64  `json:"head_size"`
	Context  int64  `json:"context"` // the model's context length in tokens
}

func shapeOf(p preset.Shape) kvShape {
	return kvShape{Name: p.Name, Layers: int64(p.Layers), Heads: int64(p.Heads), KVHeads: int64(p.KVHeads),
		HeadSize: int64(p.HeadSize()), Context: int64(p.SeqLen)}
}

// attention names the shape's attention: MHA, GQA or MQA.
func (s kvShape) attention() string {
	switch {
	case s.KVHeads == s.Heads:
		return "MHA"
	case s.KVHeads == 1:
		return "MQA"
	}
	return "GQA"
}

// mul multiplies non-negative factors, failing with errTooLarge on overflow.
func mul(factors ...int64) (int64, error) {
	p := uint64(1)
	for _, f := range factors {
		hi, lo := bits.Mul64(p, uint64(f))
		if hi != 0 || lo > 1<<63-1 {
			return 0, errTooLarge
		}
		p = lo
	}
	return int64(p), nil
}

// kvSize is the KV cache of tokens × batch in one dtype, split into its two terms.
type kvSize struct {
	Data   int64 `json:"data_bytes"`  // 2 × layers × kv_heads × head_size × tokens × batch × element bytes
	Scales int64 `json:"scale_bytes"` // 2 × layers × kv_heads × tokens × batch × 4 (int8, int4)
	Total  int64 `json:"total_bytes"`
}

// kvBytes sizes the cache of batch sequences of tokens tokens each.
func kvBytes(s kvShape, d kvDtype, tokens, batch int64) (kvSize, error) {
	elemBits, err := mul(2, s.Layers, s.KVHeads, s.HeadSize, tokens, batch, d.bits)
	if err != nil {
		return kvSize{}, err
	}
	z := kvSize{Data: elemBits / 8} // exact: the factor 2 makes int4's bit count a multiple of 8
	if d.scaled {
		if z.Scales, err = mul(2, s.Layers, s.KVHeads, tokens, batch, scaleBytes); err != nil {
			return kvSize{}, err
		}
	}
	if z.Data > 1<<63-1-z.Scales {
		return kvSize{}, errTooLarge
	}
	z.Total = z.Data + z.Scales
	return z, nil
}

// memcalcFlags are the parsed flags of kvmesh memcalc; zero means "not given".
type memcalcFlags struct {
	preset                           string
	seq, batch, blockSize            int64
	dtype                            string
	layers, heads, kvHeads, headSize int64
	json                             bool
}

func runMemcalc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("memcalc", stderr)
	var f memcalcFlags
	fs.StringVar(&f.preset, "preset", "", "model `name` (default: a summary of every preset); one of "+strings.Join(preset.Names(), ", "))
	fs.Int64Var(&f.seq, "seq", 0, "tokens per sequence (default: the model's context length)")
	fs.Int64Var(&f.batch, "batch", 1, "sequences held at once")
	fs.StringVar(&f.dtype, "dtype", "fp16", "KV storage `type`: fp32, fp16, int8 or int4")
	fs.Int64Var(&f.blockSize, "block-size", 16, "tokens per paged KV block")
	fs.Int64Var(&f.layers, "layers", 0, "explicit shape: layers (overrides the preset's)")
	fs.Int64Var(&f.heads, "heads", 0, "explicit shape: query heads, for the MHA comparison (default: --kv-heads)")
	fs.Int64Var(&f.kvHeads, "kv-heads", 0, "explicit shape: key/value heads (overrides the preset's)")
	fs.Int64Var(&f.headSize, "head-size", 0, "explicit shape: width of one head (overrides the preset's)")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kvmesh memcalc [--preset NAME | --layers L --kv-heads H --head-size D --seq N] [--seq N] [--batch B] [--dtype fp32|fp16|int8|int4] [--block-size 16] [--json]\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, err := lookupDtype(f.dtype)
	if err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		val  int64
	}{{"seq", f.seq}, {"layers", f.layers}, {"heads", f.heads}, {"kv-heads", f.kvHeads}, {"head-size", f.headSize}} {
		if v.val < 0 {
			return fmt.Errorf("--%s %d must not be negative", v.name, v.val)
		}
	}
	if f.batch < 1 || f.blockSize < 1 {
		return fmt.Errorf("--batch %d and --block-size %d must be at least 1", f.batch, f.blockSize)
	}
	explicit := f.layers != 0 || f.heads != 0 || f.kvHeads != 0 || f.headSize != 0
	if f.preset == "" && !explicit {
		return memcalcSummary(stdout, f, d)
	}
	s, err := memcalcShape(f)
	if err != nil {
		return err
	}
	rep, err := memcalcReport(s, d, f)
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(stdout, rep)
	}
	printMemReport(stdout, rep)
	return nil
}

// memcalcShape is the preset named by --preset with the explicit-shape flags applied, or
// the shape of the explicit flags alone.
func memcalcShape(f memcalcFlags) (kvShape, error) {
	var s kvShape
	if f.preset != "" {
		p, err := preset.Lookup(f.preset)
		if err != nil {
			return kvShape{}, err
		}
		s = shapeOf(p)
	}
	changed := false
	for _, o := range []struct {
		dst *int64
		val int64
	}{{&s.Layers, f.layers}, {&s.KVHeads, f.kvHeads}, {&s.HeadSize, f.headSize}, {&s.Heads, f.heads}} {
		if o.val != 0 && *o.dst != o.val {
			*o.dst, changed = o.val, true
		}
	}
	switch {
	case f.preset == "":
		s.Name = "custom"
		s.Context = f.seq
		if f.heads == 0 {
			s.Heads = s.KVHeads
		}
	case changed:
		s.Name += " (modified)"
		if f.heads == 0 && s.KVHeads > s.Heads {
			s.Heads = s.KVHeads
		}
	}
	const limit = 1 << 20
	switch {
	case s.Layers < 1 || s.KVHeads < 1 || s.HeadSize < 1:
		return kvShape{}, fmt.Errorf("an explicit shape needs --layers, --kv-heads and --head-size (got %d, %d, %d)", s.Layers, s.KVHeads, s.HeadSize)
	case s.Context < 1:
		return kvShape{}, errors.New("an explicit shape needs --seq, the tokens per sequence")
	case s.Layers > limit || s.Heads > limit || s.HeadSize > limit:
		return kvShape{}, fmt.Errorf("shape %+v: dimensions above %d are not a model", s, limit)
	case s.Heads%s.KVHeads != 0:
		return kvShape{}, fmt.Errorf("--heads %d is not a multiple of --kv-heads %d", s.Heads, s.KVHeads)
	}
	return s, nil
}

// memReport is everything kvmesh memcalc prints for one shape.
type memReport struct {
	Model        kvShape   `json:"model"`
	Attention    string    `json:"attention"` // MHA, GQA or MQA
	Dtype        string    `json:"dtype"`
	ElementBytes float64   `json:"element_bytes"`
	ScaleBytes   int64     `json:"scale_bytes_per_token_head"` // 4 for int8/int4, else 0
	Tokens       int64     `json:"tokens"`
	Batch        int64     `json:"batch"`
	PerToken     kvSize    `json:"per_token"` // one token of one sequence
	Size         kvSize    `json:"size"`      // tokens × batch
	GiB          float64   `json:"total_gib"`
	Table        []memRow  `json:"table"`    // by length and batch, in Dtype
	Variants     []memAttn `json:"variants"` // MHA, this model, MQA at tokens × batch
	Dtypes       []memType `json:"dtypes"`   // every storage type at tokens × batch
	Paged        memPaged  `json:"paged"`
}

type memRow struct {
	Tokens int64     `json:"tokens"`
	Bytes  []memCell `json:"bytes"` // one per batch size
}

type memCell struct {
	Batch int64 `json:"batch"`
	Bytes int64 `json:"bytes"`
}

type memAttn struct {
	Variant string  `json:"variant"`
	KVHeads int64   `json:"kv_heads"`
	Bytes   int64   `json:"bytes"`
	Saving  float64 `json:"saving_vs_mha"` // MHA bytes / these bytes
}

type memType struct {
	Dtype  string  `json:"dtype"`
	Bytes  int64   `json:"bytes"`
	VsFP16 float64 `json:"fraction_of_fp16"`
}

// memPaged compares paged blocks with reserving the full context per sequence.
type memPaged struct {
	BlockSize        int64 `json:"block_size"`
	BlocksPerSeq     int64 `json:"blocks_per_seq"`
	SlotsPerSeq      int64 `json:"slots_per_seq"`  // BlocksPerSeq × BlockSize
	UnusedPerSeq     int64 `json:"unused_per_seq"` // SlotsPerSeq − tokens, < BlockSize
	BlockBytes       int64 `json:"block_bytes"`    // one block, all layers, K and V
	PagedBytes       int64 `json:"paged_bytes"`    // batch × BlocksPerSeq × BlockBytes
	ContiguousTokens int64 `json:"contiguous_tokens"`
	ContiguousBytes  int64 `json:"contiguous_bytes"` // batch × context tokens reserved up front
}

// memcalcLengths are the table's lengths: 512, 2048, 4096, the context and tokens, sorted.
func memcalcLengths(context, tokens int64) []int64 {
	l := []int64{512, 2048, 4096, context, tokens}
	slices.Sort(l)
	return slices.Compact(l)
}

// memcalcBatches are the table's batch sizes: 1, 8, 32, 64 and batch, sorted.
func memcalcBatches(batch int64) []int64 {
	b := []int64{1, 8, 32, 64, batch}
	slices.Sort(b)
	return slices.Compact(b)
}

func memcalcReport(s kvShape, d kvDtype, f memcalcFlags) (memReport, error) {
	tokens := f.seq
	if tokens == 0 {
		tokens = s.Context
	}
	r := memReport{Model: s, Attention: s.attention(), Dtype: d.name, ElementBytes: d.elementBytes(),
		Tokens: tokens, Batch: f.batch}
	if d.scaled {
		r.ScaleBytes = scaleBytes
	}
	var err error
	if r.PerToken, err = kvBytes(s, d, 1, 1); err != nil {
		return r, err
	}
	if r.Size, err = kvBytes(s, d, tokens, f.batch); err != nil {
		return r, fmt.Errorf("%d tokens × batch %d: %w", tokens, f.batch, err)
	}
	r.GiB = float64(r.Size.Total) / (1 << 30)
	for _, n := range memcalcLengths(s.Context, tokens) {
		row := memRow{Tokens: n}
		for _, b := range memcalcBatches(f.batch) {
			z, err := kvBytes(s, d, n, b)
			if err != nil {
				return r, fmt.Errorf("%d tokens × batch %d: %w", n, b, err)
			}
			row.Bytes = append(row.Bytes, memCell{Batch: b, Bytes: z.Total})
		}
		r.Table = append(r.Table, row)
	}
	mha := s
	mha.KVHeads = s.Heads
	mhaSize, err := kvBytes(mha, d, tokens, f.batch)
	if err != nil {
		return r, err
	}
	for _, v := range []struct {
		name string
		kv   int64
	}{{"MHA", s.Heads}, {"this model", s.KVHeads}, {"MQA", 1}} {
		if len(r.Variants) > 0 && r.Variants[len(r.Variants)-1].KVHeads == v.kv {
			continue
		}
		if v.kv == s.KVHeads {
			v.name = s.attention() + " (this model)"
		}
		alt := s
		alt.KVHeads = v.kv
		z, err := kvBytes(alt, d, tokens, f.batch)
		if err != nil {
			return r, err
		}
		r.Variants = append(r.Variants, memAttn{Variant: v.name, KVHeads: v.kv, Bytes: z.Total,
			Saving: float64(mhaSize.Total) / float64(z.Total)})
	}
	fp16, _ := lookupDtype("fp16")
	half, err := kvBytes(s, fp16, tokens, f.batch)
	if err != nil {
		return r, err
	}
	for _, t := range kvDtypes {
		z, err := kvBytes(s, t, tokens, f.batch)
		if err != nil {
			return r, err
		}
		r.Dtypes = append(r.Dtypes, memType{Dtype: t.name, Bytes: z.Total, VsFP16: float64(z.Total) / float64(half.Total)})
	}
	r.Paged, err = memcalcPaged(s, d, tokens, f.batch, f.blockSize)
	return r, err
}

func memcalcPaged(s kvShape, d kvDtype, tokens, batch, blockSize int64) (memPaged, error) {
	p := memPaged{BlockSize: blockSize, BlocksPerSeq: (tokens + blockSize - 1) / blockSize,
		ContiguousTokens: max(s.Context, tokens)}
	p.SlotsPerSeq = p.BlocksPerSeq * blockSize
	p.UnusedPerSeq = p.SlotsPerSeq - tokens
	block, err := kvBytes(s, d, blockSize, 1)
	if err != nil {
		return p, err
	}
	p.BlockBytes = block.Total
	if p.PagedBytes, err = mul(batch, p.BlocksPerSeq, p.BlockBytes); err != nil {
		return p, err
	}
	cont, err := kvBytes(s, d, p.ContiguousTokens, batch)
	p.ContiguousBytes = cont.Total
	return p, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printMemReport(w io.Writer, r memReport) {
	s := r.Model
	fmt.Fprintf(w, "%s: %d layers, %d query heads, %d KV heads (%s), head size %d, context %d\n",
		s.Name, s.Layers, s.Heads, s.KVHeads, r.Attention, s.HeadSize, s.Context)
	if r.Tokens > s.Context {
		fmt.Fprintf(w, "note: %d tokens per sequence exceed the model's context of %d\n", r.Tokens, s.Context)
	}
	fmt.Fprintf(w, "storage %s: %s per element", r.Dtype, byteCount(r.ElementBytes))
	if r.ScaleBytes > 0 {
		fmt.Fprintf(w, ", plus one fp32 scale per token per KV head per layer, for K and for V")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	fmt.Fprintf(w, "KV cache = 2 (K and V) × %d layers × %d kv_heads × %d head_size × %d tokens × %d batch × %s\n",
		s.Layers, s.KVHeads, s.HeadSize, r.Tokens, r.Batch, byteCount(r.ElementBytes))
	if r.ScaleBytes > 0 {
		fmt.Fprintf(w, "         + 2 (K and V) × %d layers × %d kv_heads × %d tokens × %d batch × %d bytes (scales)\n",
			s.Layers, s.KVHeads, r.Tokens, r.Batch, r.ScaleBytes)
		fmt.Fprintf(w, "         = %s + %s bytes\n", commas(r.Size.Data), commas(r.Size.Scales))
	}
	fmt.Fprintf(w, "         = %s bytes = %.6g GiB\n", commas(r.Size.Total), r.GiB)
	fmt.Fprintf(w, "per token of one sequence: %s bytes (%s)\n\n", commas(r.PerToken.Total), humanBytes(r.PerToken.Total))

	fmt.Fprintf(w, "%s by tokens per sequence and batch:\n", r.Dtype)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "tokens\t")
	for _, c := range r.Table[0].Bytes {
		fmt.Fprintf(tw, "batch %d\t", c.Batch)
	}
	fmt.Fprintln(tw)
	for _, row := range r.Table {
		label := fmt.Sprint(row.Tokens)
		if row.Tokens == s.Context {
			label += " (context)"
		}
		fmt.Fprintf(tw, "%s\t", label)
		for _, c := range row.Bytes {
			fmt.Fprintf(tw, "%s\t", humanBytes(c.Bytes))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nattention variants at %d tokens × batch %d, %s:\n", r.Tokens, r.Batch, r.Dtype)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tkv heads\tbytes\t\tsaving vs MHA\t")
	for _, v := range r.Variants {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s×\t\n", v.Variant, v.KVHeads, commas(v.Bytes), humanBytes(v.Bytes), trimFloat(v.Saving))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nstorage types at %d tokens × batch %d:\n", r.Tokens, r.Batch)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dtype\tbytes\t\tof fp16\t")
	for _, t := range r.Dtypes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t\n", t.Dtype, commas(t.Bytes), humanBytes(t.Bytes), 100*t.VsFP16)
	}
	tw.Flush()

	p := r.Paged
	fmt.Fprintf(w, "\npaged blocks of %d tokens (%s per block, all layers, K and V):\n", p.BlockSize, humanBytes(p.BlockBytes))
	fmt.Fprintf(w, "  %d tokens per sequence → %d blocks = %d token slots, %d unused (always < %d)\n",
		r.Tokens, p.BlocksPerSeq, p.SlotsPerSeq, p.UnusedPerSeq, p.BlockSize)
	fmt.Fprintf(w, "  paged:      %d × %d blocks × %s = %s bytes (%s)\n",
		r.Batch, p.BlocksPerSeq, commas(p.BlockBytes), commas(p.PagedBytes), humanBytes(p.PagedBytes))
	fmt.Fprintf(w, "  contiguous: %d × %d tokens reserved = %s bytes (%s), %.2f× the paged size\n",
		r.Batch, p.ContiguousTokens, commas(p.ContiguousBytes), humanBytes(p.ContiguousBytes),
		float64(p.ContiguousBytes)/float64(p.PagedBytes))
}

// memSummary is one preset's line of the summary table.
type memSummary struct {
	Model    kvShape   `json:"model"`
	Dtype    string    `json:"dtype"`
	Tokens   int64     `json:"tokens"`
	PerToken int64     `json:"bytes_per_token"`
	Bytes    []memCell `json:"bytes"` // tokens × batch, one per batch size
}

// memcalcSummary prints, for every preset, the bytes per token and at --seq (default: the
// preset's context) for each batch size.
func memcalcSummary(w io.Writer, f memcalcFlags, d kvDtype) error {
	var rows []memSummary
	for _, p := range preset.All() {
		s := shapeOf(p)
		row := memSummary{Model: s, Dtype: d.name, Tokens: cmpOr(f.seq, s.Context)}
		pt, err := kvBytes(s, d, 1, 1)
		if err != nil {
			return err
		}
		row.PerToken = pt.Total
		for _, b := range memcalcBatches(f.batch) {
			z, err := kvBytes(s, d, row.Tokens, b)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			row.Bytes = append(row.Bytes, memCell{Batch: b, Bytes: z.Total})
		}
		rows = append(rows, row)
	}
	if f.json {
		return writeJSON(w, rows)
	}
	fmt.Fprintf(w, "KV cache per preset in %s (2 × layers × kv_heads × head_size × tokens × batch × %s", d.name, byteCount(d.elementBytes()))
	if d.scaled {
		fmt.Fprint(w, " + fp32 scales")
	}
	fmt.Fprintln(w, "):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "preset\tlayers\theads\tkv heads\thead size\tper token\ttokens\t")
	for _, c := range rows[0].Bytes {
		fmt.Fprintf(tw, "batch %d\t", c.Batch)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		s := r.Model
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t", s.Name, s.Layers, s.Heads, s.KVHeads, s.HeadSize, humanBytes(r.PerToken), r.Tokens)
		for _, c := range r.Bytes {
			fmt.Fprintf(tw, "%s\t", humanBytes(c.Bytes))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w, "\ntokens is --seq, or each preset's context length; 'kvmesh memcalc --preset NAME' details one model")
	return nil
}

// cmpOr returns a unless it is zero, else b.
func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// commas formats n with thousands separators: 2147483648 → "2,147,483,648".
func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// humanBytes formats n in binary units with one decimal: "320.0 KiB", "2.0 GiB".
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// byteCount formats a (possibly fractional) number of bytes: "1 byte", "0.5 bytes".
func byteCount(x float64) string {
	if x == 1 {
		return "1 byte"
	}
	return trimFloat(x) + " bytes"
}

// trimFloat formats x with up to four decimals and no trailing zeros: 2, 0.5, 1.0312.
func trimFloat(x float64) string {
	s := strings.TrimRight(fmt.Sprintf("%.4f", x), "0")
	return strings.TrimSuffix(s, ".")
}
