package change

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// The hand-written encoder gives the bytes of Core Deterministic Encoding.
func TestFieldsEncodeMatchesLibrary(t *testing.T) {
	id := ident.New()
	a := &domain.Activity{ID: id, Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite", Commune: "88413",
		Thematiques: []string{"email", "securite_numerique"}, PassNumerique: 300, TitreAtelier: "Sécuriser ses comptes",
		Participants: &domain.Participants{Total: 12, Genre: map[string]int{"feminin": 7, "masculin": 5}, Beneficiaires: []ident.ID{id}}}
	f, err := Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f[domain.IDField]; ok || len(f) != 9 {
		t.Fatalf("fields %v", f.Nums())
	}
	want, err := encMode.Marshal(map[uint64]cbor.RawMessage(f))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("hand-written encoding differs:\n%x\n%x", got, want)
	}
	back, err := Decode(domain.KindActivity, id, f)
	if err != nil {
		t.Fatal(err)
	}
	if b := back.(*domain.Activity); b.Participants.Genre["feminin"] != 7 || b.PassNumerique != 300 || b.ID != id {
		t.Fatalf("round trip: %+v", b)
	}
}

func TestSplitMapRejectsDamage(t *testing.T) {
	good := Fields{2: Null, 3: []byte{0x61, 'x'}}.Encode()
	for i := 1; i < len(good); i++ {
		if _, err := splitMap(good[:i], 1); err == nil {
			t.Errorf("truncated at %d accepted", i)
		}
	}
	if _, err := splitMap([]byte{0x81, 0x01}, 1); err == nil {
		t.Error("array accepted as a map")
	}
}

// MapValue, Text and Uint read what the library encodes, as the library
// decodes it.
func TestMapValueTextUint(t *testing.T) {
	b := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre-Garnier", AnneeNaissance: 1950, Commune: "88160"}
	f, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	enc := f.Encode()
	for _, tt := range []struct {
		num  uint64
		want string
	}{{2, b.Prenom}, {3, b.Nom}, {9, b.Commune}} {
		v, err := MapValue(enc, tt.num)
		if err != nil || !bytes.Equal(v, f[tt.num]) {
			t.Fatalf("MapValue(%d) = %x, %v; want %x", tt.num, v, err, f[tt.num])
		}
		s, ok := Text(v)
		if !ok || string(s) != tt.want {
			t.Errorf("Text(field %d) = %q, %v; want %q", tt.num, s, ok, tt.want)
		}
	}
	if v, err := MapValue(enc, 4); v != nil || err != nil {
		t.Errorf("absent field: %x, %v", v, err)
	}
	if n, ok := Uint(f[6]); !ok || n != 1950 {
		t.Errorf("Uint(annee_naissance) = %d, %v", n, ok)
	}
	if _, ok := Text(f[6]); ok {
		t.Error("an integer read as text")
	}
	if _, ok := Uint(Null); ok {
		t.Error("null read as an integer")
	}
	if _, ok := Text(f[2][:len(f[2])-1]); ok {
		t.Error("truncated text accepted")
	}
	for i := 1; i < len(enc); i++ {
		if _, err := MapValue(enc[:i], 99); err == nil {
			t.Errorf("truncated at %d accepted", i)
		}
	}
	if _, err := MapValue([]byte{0x81, 0x01}, 1); err == nil {
		t.Error("array accepted as a map")
	}
	out := make([][]byte, 4)
	if err := MapValues(enc, []uint64{9, 4, 2, 3}, out); err != nil || !bytes.Equal(out[0], f[9]) || out[1] != nil ||
		!bytes.Equal(out[2], f[2]) || !bytes.Equal(out[3], f[3]) {
		t.Errorf("MapValues: %x, %v", out, err)
	}
	idv, err := Encode(&domain.Consent{ID: ident.New(), Beneficiaire: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if raw, ok := Bytes(idv[2]); !ok || !bytes.Equal(raw, b.ID[:]) {
		t.Errorf("Bytes(beneficiaire) = %x, %v; want %x", raw, ok, b.ID[:])
	}
	if _, ok := Bytes(f[2]); ok {
		t.Error("text read as bytes")
	}
}
