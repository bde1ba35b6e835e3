package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestOpenHeader(t *testing.T) {
	o := &Open{Proto: 5, Device: device, Mode: ModePush, Acked: 7, AckedTag: seq(1, TagSize), Early: 3, Sig: seq(2, SigSize)}
	h, err := EncodeOpen(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeOpen(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Acked != 7 || got.Early != 3 || !bytes.Equal(got.Sig, o.Sig) || got.Device != device {
		t.Fatalf("round trip: %+v", got)
	}
	hello, _ := Encode(&Hello{Proto: 5, Device: device, Mode: ModeFull})
	bad := map[string]struct {
		header string
		want   error
	}{
		"not base64":       {"%%%", ErrMalformed},
		"too long":         {strings.Repeat("A", 2000), ErrTooLarge},
		"another message":  {b64(hello), ErrMalformed},
		"not cbor":         {b64([]byte{0xff, 0x01}), ErrMalformed},
		"too many early":   {mustOpen(t, &Open{Device: device, Mode: ModeFull, Early: 100}), ErrMalformed},
		"unknown mode":     {b64(mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: 9}})), ErrMalformed},
		"tag of 3 bytes":   {b64(mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, AckedTag: []byte{1, 2, 3}}})), ErrMalformed},
		"signature of one": {b64(mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, Sig: []byte{1}}})), ErrMalformed},
	}
	for name, c := range bad {
		if _, err := DecodeOpen(c.header); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// The signed message binds the session's exporter and every field.
func TestOpenMessageBindsTheSession(t *testing.T) {
	o := &Open{Proto: 5, Device: device, Mode: ModeFull, Acked: 7, Sig: seq(2, SigSize)}
	a, _ := OpenMessage(seq(1, ExporterSize), o)
	b, _ := OpenMessage(seq(9, ExporterSize), o)
	if bytes.Equal(a, b) {
		t.Fatal("two sessions, one message: a signature could be replayed")
	}
	o2 := *o
	o2.Acked = 8
	c, _ := OpenMessage(seq(1, ExporterSize), &o2)
	if bytes.Equal(a, c) {
		t.Fatal("the mark is not signed")
	}
	o3 := *o
	o3.Sig = seq(3, SigSize)
	d, _ := OpenMessage(seq(1, ExporterSize), &o3)
	if !bytes.Equal(a, d) {
		t.Fatal("the signature is part of what it signs")
	}
}

func mustOpen(t *testing.T, o *Open) string {
	t.Helper()
	b, err := encMode.Marshal(&openFrame{TypeOpen, *o})
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

func mustRaw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
