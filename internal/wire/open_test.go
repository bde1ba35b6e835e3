package wire

import (
	"bytes"
	"errors"
	"testing"
)

// An Open is a frame like the others, decoded by the one decoder, which
// refuses what its checks refuse.
func TestOpenFrame(t *testing.T) {
	o := &Open{Proto: 5, Device: device, Mode: ModePush, Acked: 7, AckedTag: seq(1, TagSize), Early: 3, Sig: seq(2, SigSize)}
	b, err := Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := m.(*Open)
	if !ok || got.Acked != 7 || got.Early != 3 || !bytes.Equal(got.Sig, o.Sig) || got.Device != device {
		t.Fatalf("round trip: %+v", m)
	}
	bad := map[string][]byte{
		"too many early":     mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, Early: 100}}),
		"unknown mode":       mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: 9}}),
		"tag of 3 bytes":     mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, AckedTag: []byte{1, 2, 3}}}),
		"signature of one":   mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, Sig: []byte{1}}}),
		"no device":          mustRaw(t, &openFrame{TypeOpen, Open{Mode: ModeFull}}),
		"retention tag of 3": mustRaw(t, &openFrame{TypeOpen, Open{Device: device, Mode: ModeFull, Retention: []byte{1, 2, 3}}}),
	}
	for name, b := range bad {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want %v", name, err, ErrMalformed)
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

func mustRaw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A retention policy has one tag, whatever the order its kinds were
// given in; another period, or another kind, gives another tag.
func TestRetentionTag(t *testing.T) {
	a := map[string]uint32{"identite": 24, "diagnostics": 24, "notes": 18, "journal": 12}
	b := map[string]uint32{}
	for _, k := range []string{"journal", "notes", "diagnostics", "identite"} {
		b[k] = a[k]
	}
	ta := RetentionTag(a)
	if len(ta) != RetentionTagSize || !bytes.Equal(ta, RetentionTag(b)) {
		t.Fatalf("one policy, two tags: %x %x", ta, RetentionTag(b))
	}
	b["notes"] = 12
	if bytes.Equal(ta, RetentionTag(b)) {
		t.Fatal("another period, the same tag")
	}
	b["notes"] = 18
	b["nouveau"] = 6
	if bytes.Equal(ta, RetentionTag(b)) {
		t.Fatal("another kind, the same tag")
	}
}
