package swap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func encodeTest(k Key, m Meta, p []byte) []byte {
	v := make([]byte, valueSize(&m, len(p)))
	encodeValue(v, &k, &m, p)
	return v
}

func TestValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Meta
		p    []byte
	}{
		{"empty", Meta{}, nil},
		{"prefix", testMeta(3), testPayload(3, 100)},
		{"private int8", Meta{Kind: KindPrivate, Encoding: EncodingInt8, DType: 9, Tokens: []int32{-5, 0, 1<<31 - 1}}, []byte{1, 2, 3}},
		{"max tokens", Meta{Tokens: make([]int32, MaxTokens)}, []byte{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := testKey(1)
			v := encodeTest(k, tt.m, tt.p)
			if len(v) != headerSize+metaFixedSize+4*len(tt.m.Tokens)+len(tt.p) {
				t.Errorf("value of %d bytes", len(v))
			}
			m, p, err := decodeValue(&k, v, nil)
			if err != nil || !bytes.Equal(p, tt.p) || !metaEqual(m, tt.m) {
				t.Fatalf("decode: %+v %v", m, err)
			}
			// Every single-bit flip anywhere is caught.
			for i := range min(len(v), 400) {
				for bit := range 8 {
					v[i] ^= 1 << bit
					if _, _, err := decodeValue(&k, v, nil); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("flip of byte %d bit %d not caught: %v", i, bit, err)
					}
					v[i] ^= 1 << bit
				}
			}
			other := testKey(2)
			if _, _, err := decodeValue(&other, v, nil); !errors.Is(err, ErrCorrupt) {
				t.Errorf("value under another key not caught: %v", err)
			}
		})
	}
}

func TestEncodeValueTooManyTokens(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for MaxTokens+1 tokens")
		}
	}()
	m := Meta{Tokens: make([]int32, MaxTokens+1)}
	k := testKey(0)
	encodeValue(make([]byte, valueSize(&m, 0)), &k, &m, nil)
}

// FuzzDecodeValue feeds arbitrary stored values to the decoder: it must
// never panic, must accept only values whose checksums hold, and whatever
// it accepts must re-encode to the same bytes.
func FuzzDecodeValue(f *testing.F) {
	k := testKey(7)
	f.Add(encodeTest(k, testMeta(1), testPayload(1, 64)))
	f.Add(encodeTest(k, Meta{}, nil))
	f.Add(encodeTest(k, Meta{Kind: KindPrivate, Tokens: []int32{1}}, []byte("x")))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(make([]byte, headerSize))
	f.Add(make([]byte, headerSize+metaFixedSize))
	trunc := encodeTest(k, testMeta(2), testPayload(2, 32))
	f.Add(trunc[:len(trunc)-1])
	f.Fuzz(func(t *testing.T, v []byte) {
		checkDecode(t, k, v)
		// Random bytes almost never pass a CRC; to reach the length and
		// meta parsing behind it, decode v again with both checksums set
		// to what its bytes hash to.
		if len(v) >= headerSize {
			v = bytes.Clone(v)
			ms := int(binary.LittleEndian.Uint16(v[2:4]))
			if headerSize+ms <= len(v) {
				binary.LittleEndian.PutUint32(v[8:12], headerCRC(&k, v[0:8], v[headerSize:headerSize+ms]))
				binary.LittleEndian.PutUint32(v[12:16], crc32.Checksum(v[headerSize+ms:], crcTable))
			}
			checkDecode(t, k, v)
		}
	})
}

// checkDecode decodes v: an error must wrap ErrCorrupt; an accepted value
// must re-encode to v and pass decodeHeader too.
func checkDecode(t *testing.T, k Key, v []byte) {
	t.Helper()
	m, p, err := decodeValue(&k, v, nil)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	if got := encodeTest(k, m, p); !bytes.Equal(got, v) {
		t.Fatalf("accepted value does not re-encode to itself")
	}
	if _, _, err := decodeHeader(&k, v, nil); err != nil {
		t.Fatalf("decodeValue accepts what decodeHeader rejects: %v", err)
	}
}
