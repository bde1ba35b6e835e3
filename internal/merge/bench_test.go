package merge

import (
	"errors"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// benchState is the state of a realistic workshop (16 fields) written on
// one laptop, then two fields edited on another (17 fields, 2 stamps).
func benchState(b testing.TB) *State {
	id, stop := ident.New(), ident.New()
	a := &domain.Activity{ID: id, Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite", Commune: "88413",
		Materiel: []string{"ordinateur", "tablette"}, Thematiques: []string{"email", "securite_numerique"},
		Demarches: []string{"caf"}, PrecisionsDemarche: "Déclaration trimestrielle", StructurePartenaire: "CCAS",
		PassNumerique: 300, Mediateur: "Camille", Arret: &stop, TitreAtelier: "Sécuriser ses comptes", Niveau: "debutant",
		Participants: &domain.Participants{Total: 12, Genre: map[string]int{"feminin": 7, "masculin": 5}, Beneficiaires: []ident.ID{id}}}
	f, err := change.Encode(a)
	if err != nil {
		b.Fatal(err)
	}
	s := NewState()
	Apply(s, domain.KindActivity, &change.Change{Kind: domain.KindActivity, ID: id, Op: change.OpUpsert, Fields: f, HLC: 1 << 40, Device: ident.New().String()})
	Apply(s, domain.KindActivity, &change.Change{Kind: domain.KindActivity, ID: id, Op: change.OpUpsert,
		Fields: change.Fields{4: raw(b, 120), 13: raw(b, "Salle pleine")}, HLC: 1<<40 + 7, Device: ident.New().String()})
	return s
}

// Marshal runs for every record written: by hand against the library.
func BenchmarkMarshalState(b *testing.B) {
	s := benchState(b)
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.marshalReflect(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Unmarshal runs for every stored state read: the hub's facts follower
// and batches, an agent's pulls and census. By hand against the library
// (its fallback), and Peek.
func BenchmarkUnmarshalState(b *testing.B) {
	raw, err := benchState(b).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fn   func([]byte) error
	}{
		{"hand", func(b []byte) error { _, err := Unmarshal(b); return err }},
		{"library", func(b []byte) error { _, err := unmarshalLibrary(b); return err }},
		{"peek", func(b []byte) error {
			if _, ok := Peek(b); !ok {
				return errors.New("not read")
			}
			return nil
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.fn(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
