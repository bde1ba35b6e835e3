package seal

import (
	"bytes"
	"errors"
	"testing"
)

// fastParams keep tests quick; DefaultParams are measured by make bench.
var fastParams = KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

func TestSealOpenBindsAssociatedData(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("Prénom: Léa, téléphone 06 12 34 56 78")
	ad := []byte("records|beneficiary|0190")
	ct, err := k.Seal(nil, msg, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("Léa")) || len(ct) != len(msg)+Overhead {
		t.Fatalf("ciphertext leaks or wrong size: %d", len(ct))
	}
	got, err := k.Open(nil, ct, ad)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open(nil, ct, []byte("records|beneficiary|0191")); !errors.Is(err, ErrOpen) {
		t.Fatalf("moved ciphertext opened: %v", err)
	}
	ct[len(ct)-1] ^= 1
	if _, err := k.Open(nil, ct, ad); !errors.Is(err, ErrOpen) {
		t.Fatalf("corrupted ciphertext opened: %v", err)
	}
	if _, err := k.Open(nil, ct[:10], ad); !errors.Is(err, ErrOpen) {
		t.Fatalf("short ciphertext: %v", err)
	}
}

func TestWipe(t *testing.T) {
	k, _ := NewKey()
	ct, _ := k.Seal(nil, []byte("x"), nil)
	k.Wipe()
	if !k.Wiped() || k.b != [KeySize]byte{} {
		t.Fatal("key bytes not zeroed")
	}
	if _, err := k.Open(nil, ct, nil); !errors.Is(err, ErrWiped) {
		t.Fatalf("Open after wipe: %v", err)
	}
	if _, err := k.Seal(nil, ct, nil); !errors.Is(err, ErrWiped) {
		t.Fatalf("Seal after wipe: %v", err)
	}
}

func TestSlotWrapUnwrap(t *testing.T) {
	dek, _ := NewKey()
	s, err := Wrap(dek, []byte("correct horse"), SlotPassphrase, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Unwrap([]byte("correct horse"))
	if err != nil || got.b != dek.b {
		t.Fatalf("Unwrap: %v", err)
	}
	if _, err := s.Unwrap([]byte("wrong horse")); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	s.Kind = SlotRecovery // a slot relabelled must not open
	if _, err := s.Unwrap([]byte("correct horse")); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("relabelled slot: %v", err)
	}
	if _, err := (&Slot{}).Unwrap([]byte("x")); err == nil {
		t.Fatal("zero params accepted")
	}
}

func TestRecoveryCode(t *testing.T) {
	c, err := NewRecoveryCode()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 39 {
		t.Fatalf("code %q has length %d", c, len(c))
	}
	n, ok := NormalizeRecoveryCode(c)
	if !ok || len(n) != 32 {
		t.Fatalf("normalize %q: %q %v", c, n, ok)
	}
	typed := bytes.ToLower([]byte(c))
	typed = bytes.ReplaceAll(typed, []byte("-"), []byte(" "))
	if n2, ok := NormalizeRecoveryCode(string(typed)); !ok || n2 != n {
		t.Fatalf("typed variant %q normalizes to %q", typed, n2)
	}
	if _, ok := NormalizeRecoveryCode("hunter2"); ok {
		t.Fatal("a passphrase looked like a recovery code")
	}
	c2, _ := NewRecoveryCode()
	if c2 == c {
		t.Fatal("two identical codes")
	}
}

func TestEnvelopeOnlyTheHubOpens(t *testing.T) {
	hub, err := NewHubKey()
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnvelope(hub.Public())
	if err != nil {
		t.Fatal(err)
	}
	ad := OutboxAD("beneficiary", [16]byte{1}, 7)
	ct, err := env.Key.Seal(nil, []byte("Hélène"), ad)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hub.Open(env.EPK)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Open(nil, ct, ad); err != nil || string(got) != "Hélène" {
		t.Fatalf("hub open: %q %v", got, err)
	}
	if _, err := k.Open(nil, ct, OutboxAD("beneficiary", [16]byte{1}, 8)); !errors.Is(err, ErrOpen) {
		t.Fatal("body opened as another change")
	}
	other, _ := NewHubKey()
	k2, _ := other.Open(env.EPK)
	if _, err := k2.Open(nil, ct, ad); !errors.Is(err, ErrOpen) {
		t.Fatal("another hub opened the envelope")
	}
	back, err := HubKeyFrom(hub.Bytes())
	if err != nil || !bytes.Equal(back.Public(), hub.Public()) {
		t.Fatal("hub key round trip")
	}
	if _, err := hub.Open(make([]byte, 5)); err == nil {
		t.Fatal("bad ephemeral key accepted")
	}
}
