package wire

import (
	"bytes"
	"errors"
	"testing"

	"numeribus/internal/ident"
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
		"no device":          mustRaw(t, map[int]any{0: TypeOpen, 5: ModeFull}),
		"device of 3 bytes":  openWithDevice(t, []byte{1, 2, 3}),
		"device as text":     openWithDevice(t, device),
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

// openWithDevice returns an Open frame whose device is v, as it is.
func openWithDevice(t *testing.T, v any) []byte {
	t.Helper()
	return mustRaw(t, map[int]any{0: TypeOpen, 3: v, 5: ModeFull})
}

// The device id goes as its 16 bytes, and comes back as its text.
func TestOpenDeviceAsBytes(t *testing.T) {
	b, err := Encode(&Open{Device: device, Mode: ModeFull})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ident.Parse(device)
	if want := mustRaw(t, map[int]any{0: TypeOpen, 3: id[:], 5: ModeFull}); !bytes.Equal(b, want) {
		t.Fatalf("encoded %x, want %x", b, want)
	}
	m, err := Decode(b)
	if err != nil || m.(*Open).Device != device {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	if _, err := Encode(&Open{Device: "019AB3C4-5D6E-7F80-9A1B-2C3D4E5F6071", Mode: ModeFull}); err == nil {
		t.Fatal("a device id not in canonical form encoded")
	}
}
