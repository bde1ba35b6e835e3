package change

import (
	"testing"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// benchActivity is a realistic collective workshop: 16 fields besides
// the id.
func benchActivity() *domain.Activity {
	id, stop := ident.New(), ident.New()
	return &domain.Activity{ID: id, Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite", Commune: "88413",
		Materiel: []string{"ordinateur", "tablette"}, Thematiques: []string{"email", "securite_numerique"},
		Demarches: []string{"caf"}, PrecisionsDemarche: "Déclaration trimestrielle", StructurePartenaire: "CCAS",
		PassNumerique: 300, Mediateur: "Camille", Arret: &stop, TitreAtelier: "Sécuriser ses comptes", Niveau: "debutant",
		Participants: &domain.Participants{Total: 12, Genre: map[string]int{"feminin": 7, "masculin": 5}, Beneficiaires: []ident.ID{id}}}
}

// The hand-written encoder of field maps against the library on the same
// map: it runs for every change logged and every record decoded.
func BenchmarkFieldsEncode(b *testing.B) {
	f, err := Encode(benchActivity())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.Encode()
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encMode.Marshal(map[uint64]cbor.RawMessage(f)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Decode of a realistic workshop, the fast way against the library's:
// the hub decodes every pushed change to check it.
func BenchmarkDecode(b *testing.B) {
	a := benchActivity()
	f, err := Encode(a)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		decode func(domain.Kind, ident.ID, Fields) (domain.Record, error)
	}{{"fast", Decode}, {"library", decodeLibrary}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(domain.KindActivity, a.ID, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
