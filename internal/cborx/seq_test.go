package cborx

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// A sequence of byte strings written by AppendBytes reads back item by
// item, each equal to what the library encodes, then io.EOF.
func TestReadBytesSequence(t *testing.T) {
	items := [][]byte{{}, []byte("x"), bytes.Repeat([]byte{7}, 23), bytes.Repeat([]byte{8}, 24), bytes.Repeat([]byte{9}, 300), bytes.Repeat([]byte{1}, 70000)}
	var seq []byte
	for _, it := range items {
		lib, err := cbor.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		n := len(seq)
		seq = AppendBytes(seq, it)
		if !bytes.Equal(seq[n:], lib) {
			t.Fatalf("item of %d bytes: %x, the library gives %x", len(it), seq[n:min(len(seq), n+8)], lib[:min(len(lib), 8)])
		}
	}
	r := bytes.NewReader(seq)
	total := 0
	for i, it := range items {
		got, n, err := ReadBytes(r, 1<<20)
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if !bytes.Equal(got, it) {
			t.Fatalf("item %d differs", i)
		}
		total += n
	}
	if total != len(seq) {
		t.Fatalf("read %d bytes, the sequence has %d", total, len(seq))
	}
	if _, _, err := ReadBytes(r, 1<<20); err != io.EOF {
		t.Fatalf("after the last item: %v, want io.EOF", err)
	}
}

func TestReadBytesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"text string", []byte{0x61, 'a'}, ErrNotBytes},
		{"map", []byte{0xa0}, ErrNotBytes},
		{"indefinite", []byte{0x5f, 0x41, 'a', 0xff}, ErrNotBytes},
		{"over the limit", []byte{0x59, 0x10, 0x00}, ErrTooLong},
		{"a length of 2^64-1", []byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrTooLong},
		{"cut in the head", []byte{0x59, 0x01}, io.ErrUnexpectedEOF},
		{"cut in the content", []byte{0x43, 'a', 'b'}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadBytes(bytes.NewReader(tc.in), 1024)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
