package change

import (
	"math"
	"unicode/utf8"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A hand-written decoder of field maps into records, for Decode's hot
// callers (the hub checks every pushed change: the library's reflection
// was most of it, BenchmarkDecode). It knows only the plain shapes the
// agents write: definite text, integers, booleans, 16-byte ids, lists and
// tables of them, the nested structs, null. Anything else — a float, a
// tag, a byte string for text, invalid UTF-8, an integer overflowing
// int, a repeated key, an unknown nested key, a field it has no decoder
// for — makes it give up, and Decode asks the library, whose result and
// errors stay the reference: for what the fast decoder takes, it gives
// what the library gives (TestDecodeFastIsTheLibrary, over fixtures and
// mutated values).

// setter decodes the value v of one field into record r, reporting false
// when v is not of the shapes it knows (r may then be half set: the
// caller drops it).
type setter[R any] func(r R, v []byte) bool

// fastKinds are the decoders of each kind, indexed by field number; nil
// where a kind has no such field.
var fastKinds = map[domain.Kind]func(Fields) (domain.Record, bool){
	domain.KindActivity:    decodeWith(func() *domain.Activity { return new(domain.Activity) }, activitySetters),
	domain.KindBeneficiary: decodeWith(func() *domain.Beneficiary { return new(domain.Beneficiary) }, beneficiarySetters),
	domain.KindConsent:     decodeWith(func() *domain.Consent { return new(domain.Consent) }, consentSetters),
	domain.KindAssessment:  decodeWith(func() *domain.Assessment { return new(domain.Assessment) }, assessmentSetters),
	domain.KindTourStop:    decodeWith(func() *domain.TourStop { return new(domain.TourStop) }, tourStopSetters),
}

// decodeFast decodes f into a new record of kind k, without its id (the
// id field of f is ignored, as Decode drops it); false when some value
// is beyond the fast decoder.
func decodeFast(k domain.Kind, f Fields) (domain.Record, bool) {
	dec, ok := fastKinds[k]
	if !ok {
		return nil, false
	}
	return dec(f)
}

// decodeWith returns the decoder of the record type R built by newRec,
// whose fields sets decodes.
func decodeWith[R domain.Record](newRec func() R, sets []setter[R]) func(Fields) (domain.Record, bool) {
	return func(f Fields) (domain.Record, bool) {
		r := newRec()
		for n, v := range f {
			if n == domain.IDField {
				continue
			}
			if n >= uint64(len(sets)) || sets[n] == nil || !sets[n](r, v) {
				return nil, false
			}
		}
		return r, true
	}
}

var activitySetters = []setter[*domain.Activity]{
	2:  func(a *domain.Activity, v []byte) bool { return text(v, &a.Type) },
	3:  func(a *domain.Activity, v []byte) bool { return text(v, &a.Date) },
	4:  func(a *domain.Activity, v []byte) bool { return integer(v, &a.Duree) },
	5:  func(a *domain.Activity, v []byte) bool { return text(v, &a.TypeLieu) },
	6:  func(a *domain.Activity, v []byte) bool { return text(v, &a.Commune) },
	7:  func(a *domain.Activity, v []byte) bool { return texts(v, &a.Materiel) },
	8:  func(a *domain.Activity, v []byte) bool { return texts(v, &a.Thematiques) },
	9:  func(a *domain.Activity, v []byte) bool { return texts(v, &a.Demarches) },
	10: func(a *domain.Activity, v []byte) bool { return text(v, &a.PrecisionsDemarche) },
	11: func(a *domain.Activity, v []byte) bool { return text(v, &a.StructurePartenaire) },
	12: func(a *domain.Activity, v []byte) bool { return integer(v, &a.PassNumerique) },
	13: func(a *domain.Activity, v []byte) bool { return text(v, &a.Notes) },
	14: func(a *domain.Activity, v []byte) bool { return text(v, &a.Mediateur) },
	15: func(a *domain.Activity, v []byte) bool { return text(v, &a.Vehicule) },
	16: func(a *domain.Activity, v []byte) bool { return idPtr(v, &a.Arret) },
	17: func(a *domain.Activity, v []byte) bool { return idPtr(v, &a.Beneficiaire) },
	18: func(a *domain.Activity, v []byte) bool { return text(v, &a.Autonomie) },
	19: func(a *domain.Activity, v []byte) bool { return structPtr(v, &a.Orientation, orientationSetters) },
	20: func(a *domain.Activity, v []byte) bool { return text(v, &a.TitreAtelier) },
	21: func(a *domain.Activity, v []byte) bool { return text(v, &a.Niveau) },
	22: func(a *domain.Activity, v []byte) bool { return structPtr(v, &a.Participants, participantsSetters) },
}

var orientationSetters = []setter[*domain.Orientation]{
	1: func(o *domain.Orientation, v []byte) bool { return boolean(v, &o.Oriente) },
	2: func(o *domain.Orientation, v []byte) bool { return text(v, &o.StructureDeRedirection) },
}

var participantsSetters = []setter[*domain.Participants]{
	1: func(p *domain.Participants, v []byte) bool { return ids(v, &p.Beneficiaires) },
	2: func(p *domain.Participants, v []byte) bool { return integer(v, &p.Total) },
	3: func(p *domain.Participants, v []byte) bool { return integer(v, &p.DejaAccompagne) },
	4: func(p *domain.Participants, v []byte) bool { return table(v, &p.Genre, integer) },
	5: func(p *domain.Participants, v []byte) bool { return table(v, &p.TrancheAge, integer) },
	6: func(p *domain.Participants, v []byte) bool { return table(v, &p.StatutSocial, integer) },
}

var beneficiarySetters = []setter[*domain.Beneficiary]{
	2:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Prenom) },
	3:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Nom) },
	4:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Telephone) },
	5:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Email) },
	6:  func(b *domain.Beneficiary, v []byte) bool { return integer(v, &b.AnneeNaissance) },
	7:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Adresse) },
	8:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Notes) },
	9:  func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Commune) },
	10: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Genre) },
	11: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.TrancheAge) },
	12: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.StatutSocial) },
	13: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.PremierAccompagnement) },
	14: func(b *domain.Beneficiary, v []byte) bool { return texts(v, &b.Publics) },
	15: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.Equipement) },
	16: func(b *domain.Beneficiary, v []byte) bool { return text(v, &b.AccesInternet) },
}

var consentSetters = []setter[*domain.Consent]{
	2: func(c *domain.Consent, v []byte) bool { return id(v, &c.Beneficiaire) },
	3: func(c *domain.Consent, v []byte) bool { return texts(v, &c.Finalites) },
	4: func(c *domain.Consent, v []byte) bool { return text(v, &c.Mode) },
	5: func(c *domain.Consent, v []byte) bool { return text(v, &c.TexteVersion) },
	6: func(c *domain.Consent, v []byte) bool { return text(v, &c.Date) },
	7: func(c *domain.Consent, v []byte) bool { return text(v, &c.Mediateur) },
	8: func(c *domain.Consent, v []byte) bool { return text(v, &c.RetireLe) },
	9: func(c *domain.Consent, v []byte) bool { return texts(v, &c.Retraits) },
}

var assessmentSetters = []setter[*domain.Assessment]{
	2:  func(a *domain.Assessment, v []byte) bool { return id(v, &a.Beneficiaire) },
	3:  func(a *domain.Assessment, v []byte) bool { return text(v, &a.Date) },
	4:  func(a *domain.Assessment, v []byte) bool { return table(v, &a.Domaines, text) },
	5:  func(a *domain.Assessment, v []byte) bool { return text(v, &a.AutonomieGlobale) },
	6:  func(a *domain.Assessment, v []byte) bool { return texts(v, &a.Besoins) },
	7:  func(a *domain.Assessment, v []byte) bool { return text(v, &a.Equipement) },
	8:  func(a *domain.Assessment, v []byte) bool { return text(v, &a.AccesInternet) },
	9:  func(a *domain.Assessment, v []byte) bool { return text(v, &a.Outil) },
	10: func(a *domain.Assessment, v []byte) bool { return text(v, &a.Commentaire) },
	11: func(a *domain.Assessment, v []byte) bool { return text(v, &a.Mediateur) },
	12: func(a *domain.Assessment, v []byte) bool { return text(v, &a.Commune) },
}

var tourStopSetters = []setter[*domain.TourStop]{
	2: func(s *domain.TourStop, v []byte) bool { return text(v, &s.Vehicule) },
	3: func(s *domain.TourStop, v []byte) bool { return text(v, &s.Date) },
	4: func(s *domain.TourStop, v []byte) bool { return text(v, &s.HeureDebut) },
	5: func(s *domain.TourStop, v []byte) bool { return text(v, &s.HeureFin) },
	6: func(s *domain.TourStop, v []byte) bool { return text(v, &s.Lieu) },
	7: func(s *domain.TourStop, v []byte) bool { return text(v, &s.Commune) },
	8: func(s *domain.TourStop, v []byte) bool { return text(v, &s.Equipe) },
	9: func(s *domain.TourStop, v []byte) bool { return boolean(v, &s.Realise) },
}

// The value decoders: each takes one whole encoded item v (nothing may
// follow it) and reports false for anything but the shapes it knows. A
// null leaves the destination as it is, as the library leaves it: zero
// in a new record.

const null = 0xf6

// maxCount bounds the lists and tables the fast decoder reads: the
// library's default limits (MaxArrayElements, MaxMapPairs), so that what
// it refuses for size is never taken here.
const maxCount = 131072

// item reads the head of the item at b[i] of major type major: its
// argument and where its content starts; false for another type, an
// indefinite length or a truncated head.
func item(b []byte, i int, major byte) (uint64, int, bool) {
	if i >= len(b) || b[i]>>5 != major || b[i]&0x1f > 27 {
		return 0, 0, false
	}
	n, j, err := head(b, i)
	return n, j, err == nil
}

// textAt reads the text string at b[i]: its bytes (a sub-slice of b)
// and where it ends; false unless definite and valid UTF-8.
func textAt(b []byte, i int) ([]byte, int, bool) {
	n, j, ok := item(b, i, 3)
	if !ok || n > uint64(len(b)-j) {
		return nil, 0, false
	}
	s := b[j : j+int(n)]
	if !utf8.Valid(s) {
		return nil, 0, false
	}
	return s, j + int(n), true
}

// intAt reads the integer at b[i] (unsigned or negative) and where it
// ends; false when it overflows int.
func intAt(b []byte, i int) (int, int, bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	major := b[i] >> 5
	if major != 0 && major != 1 {
		return 0, 0, false
	}
	n, j, ok := item(b, i, major)
	if !ok || n > math.MaxInt64 {
		return 0, 0, false
	}
	if major == 1 {
		return -1 - int(n), j, true
	}
	return int(n), j, true
}

// idAt reads the 16-byte byte string at b[i] (ident.ID's binary form)
// and where it ends.
func idAt(b []byte, i int) (ident.ID, int, bool) {
	var out ident.ID
	n, j, ok := item(b, i, 2)
	if !ok || n != uint64(len(out)) || len(b)-j < len(out) {
		return out, 0, false
	}
	copy(out[:], b[j:])
	return out, j + len(out), true
}

func isNull(v []byte) bool { return len(v) == 1 && v[0] == null }

// codeStrings holds the codes of the domain's lists, each once: most text
// of a record is a code, and a decoded code takes the string held here
// rather than a new one (strings do not change: sharing them is safe).
var codeStrings = func() map[string]string {
	m := map[string]string{}
	for _, l := range []*domain.CodeList{domain.TypesActivite, domain.TypesLieu, domain.Materiels, domain.Thematiques,
		domain.Demarches, domain.StructuresPartenaires, domain.Autonomies, domain.StructuresRedirection, domain.Niveaux,
		domain.Genres, domain.TranchesAge, domain.StatutsSociaux, domain.Publics, domain.Equipements, domain.AccesInternet,
		domain.DomainesCRCN, domain.NiveauxCRCN, domain.Outils, domain.Finalites, domain.ModesConsentement} {
		for _, c := range l.Codes {
			m[c.Code] = c.Code
		}
	}
	return m
}()

// str returns the text b as a string: a code's shared string, or a copy.
func str(b []byte) string {
	if s, ok := codeStrings[string(b)]; ok {
		return s
	}
	return string(b)
}

func text(v []byte, dst *string) bool {
	if isNull(v) {
		return true
	}
	s, end, ok := textAt(v, 0)
	if !ok || end != len(v) {
		return false
	}
	*dst = str(s)
	return true
}

func integer(v []byte, dst *int) bool {
	if isNull(v) {
		return true
	}
	n, end, ok := intAt(v, 0)
	if !ok || end != len(v) {
		return false
	}
	*dst = n
	return true
}

func boolean(v []byte, dst *bool) bool {
	switch {
	case isNull(v):
	case len(v) == 1 && v[0] == 0xf4:
		*dst = false
	case len(v) == 1 && v[0] == 0xf5:
		*dst = true
	default:
		return false
	}
	return true
}

func id(v []byte, dst *ident.ID) bool {
	if isNull(v) {
		return true
	}
	x, end, ok := idAt(v, 0)
	if !ok || end != len(v) {
		return false
	}
	*dst = x
	return true
}

func idPtr(v []byte, dst **ident.ID) bool {
	if isNull(v) {
		*dst = nil
		return true
	}
	x, end, ok := idAt(v, 0)
	if !ok || end != len(v) {
		return false
	}
	*dst = &x
	return true
}

// list reads the array v with elem, one element at a time (each returns
// where it ends), into a new slice of its length: an empty array gives
// an empty slice, not nil, as from the library.
func list[T any](v []byte, dst *[]T, elem func(b []byte, i int) (T, int, bool)) bool {
	if isNull(v) {
		*dst = nil
		return true
	}
	n, i, ok := item(v, 0, 4)
	if !ok || n > maxCount || n > uint64(len(v)-i) {
		return false
	}
	out := make([]T, n)
	for k := range out {
		if out[k], i, ok = elem(v, i); !ok {
			return false
		}
	}
	*dst = out
	return i == len(v)
}

func texts(v []byte, dst *[]string) bool {
	return list(v, dst, func(b []byte, i int) (string, int, bool) {
		s, end, ok := textAt(b, i)
		return str(s), end, ok
	})
}

func ids(v []byte, dst *[]ident.ID) bool { return list(v, dst, idAt) }

// table reads the map v of text keys and values read by elem (a whole
// item each) into a new map: an empty one gives an empty map, not nil,
// as from the library. A repeated key, or a null value, gives up.
func table[T any](v []byte, dst *map[string]T, elem func([]byte, *T) bool) bool {
	if isNull(v) {
		*dst = nil
		return true
	}
	n, i, ok := item(v, 0, 5)
	if !ok || n > maxCount || n > uint64(len(v)-i) {
		return false
	}
	out := make(map[string]T, n)
	for range n {
		var k []byte
		if k, i, ok = textAt(v, i); !ok {
			return false
		}
		end, err := skip(v, i, 0)
		if err != nil || isNull(v[i:end]) {
			return false
		}
		var x T
		if !elem(v[i:end], &x) {
			return false
		}
		if _, dup := out[string(k)]; dup {
			return false
		}
		out[str(k)] = x
		i = end
	}
	*dst = out
	return i == len(v)
}

// structPtr reads the map v of field numbers into a new S (a nested
// struct of a record) with sets; an unknown or repeated key gives up.
func structPtr[S any](v []byte, dst **S, sets []setter[*S]) bool {
	if isNull(v) {
		*dst = nil
		return true
	}
	n, i, ok := item(v, 0, 5)
	if !ok || n > maxCount || n > uint64(len(v)-i) {
		return false
	}
	out := new(S)
	var seen uint64 // the keys read, as bits: nested structs have fewer than 64 fields
	for range n {
		var k uint64
		if k, i, ok = item(v, i, 0); !ok || k >= 64 || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k
		end, err := skip(v, i, 0)
		if err != nil || k >= uint64(len(sets)) || sets[k] == nil || !sets[k](out, v[i:end]) {
			return false
		}
		i = end
	}
	*dst = out
	return i == len(v)
}
