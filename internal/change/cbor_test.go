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
