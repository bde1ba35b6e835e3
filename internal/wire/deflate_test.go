package wire

import (
	"bytes"
	"compress/flate"
	"errors"
	"testing"
)

func TestDeflate(t *testing.T) {
	// A page of repetitive changes compresses, and decodes as it was.
	page := &Changes{Next: 900}
	for i := range 300 {
		page.Changes = append(page.Changes, Change{Kind: 1, ID: id1, Op: 1, HLC: ts + uint64(i), Seq: uint64(i + 1),
			Fields: fieldsOf(t, map[uint64]any{2: "individuel", 3: "2026-11-23", 4: 45}), Device: device, HubSeq: uint64(i + 1)})
	}
	raw, err := Encode(page)
	if err != nil {
		t.Fatal(err)
	}
	z, err := Deflate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(z) >= len(raw)/2 {
		t.Fatalf("deflated %d of %d bytes", len(z), len(raw))
	}
	got, err := Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Decode(raw)
	if !bytesEqual(t, got, want) {
		t.Fatal("the deflated page decodes otherwise")
	}
	// A frame that does not shrink goes as it is.
	small, _ := Encode(&Ack{Batch: 1, HWM: 2})
	if same, _ := Deflate(small); !bytes.Equal(same, small) {
		t.Fatal("a frame that does not shrink was wrapped")
	}
}

func TestInflateLimits(t *testing.T) {
	squeeze := func(b []byte) []byte {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	frame := func(z []byte) []byte {
		b, err := Encode(&Deflated{Frame: z})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ack, _ := Encode(&Ack{Batch: 1})
	inner := frame(squeeze(ack))
	cases := map[string]struct {
		frame []byte
		want  error
	}{
		// 5 MiB of zeros deflate to a few KiB: a bomb for a naive reader.
		"inflates beyond the frame limit": {frame(squeeze(make([]byte, 5<<20))), ErrTooLarge},
		"deflated inside deflated":        {frame(squeeze(inner)), ErrMalformed},
		"not deflate":                     {frame([]byte{0xff, 0xff, 0xff}), ErrMalformed},
		"inflates to garbage":             {frame(squeeze([]byte("not cbor"))), ErrMalformed},
	}
	for name, c := range cases {
		if _, err := Decode(c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func bytesEqual(t *testing.T, a, b Message) bool {
	t.Helper()
	x, err := Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
