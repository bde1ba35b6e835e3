package change

import (
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// The hub checks what each pushed change sets with the domain's own
// rules for one field; the rules that need the whole record stay with the
// agent, where the whole record is.
func TestCheckValues(t *testing.T) {
	raw := func(v any) []byte {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full, err := Encode(&domain.Activity{ID: ident.New(), Date: "2026-03-02", Type: "individuel", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "88160", Thematiques: []string{"diagnostic_numerique"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		kind   domain.Kind
		fields Fields
		bad    string // a word of the error; "" when valid
	}{
		{"a whole valid record", domain.KindActivity, full, ""},
		{"one valid field", domain.KindActivity, Fields{4: raw(45)}, ""},
		{"a field cleared", domain.KindActivity, Fields{4: Null}, ""},
		{"demarches without thematiques: a rule between fields", domain.KindActivity, Fields{fieldNum(t, domain.KindActivity, "demarches"): raw([]string{"social_sante"})}, ""},
		{"an unknown code", domain.KindActivity, Fields{5: raw("sur_la_lune")}, "type_lieu"},
		{"a duration out of range", domain.KindActivity, Fields{4: raw(-5)}, "duree"},
		{"an impossible date", domain.KindActivity, Fields{fieldNum(t, domain.KindActivity, "date"): raw("2026-02-31")}, "date"},
		{"an invalid e-mail", domain.KindBeneficiary, Fields{5: raw("pas-une-adresse")}, "email"},
		{"a note at the size limit", domain.KindActivity, Fields{fieldNum(t, domain.KindActivity, "notes"): raw(strings.Repeat("é", domain.MaxText/2))}, ""},
		{"a note over the size limit", domain.KindActivity, Fields{fieldNum(t, domain.KindActivity, "notes"): raw(strings.Repeat("a", domain.MaxText+1))}, "notes"},
		{"too many participants", domain.KindActivity, Fields{fieldNum(t, domain.KindActivity, "participants"): raw(&domain.Participants{Total: 5, Beneficiaires: make([]ident.ID, domain.MaxItems+1)})}, "participants.beneficiaires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Change{Kind: tt.kind, ID: ident.New(), Op: OpUpsert, Fields: tt.fields}
			if err := c.CheckFields(); err != nil {
				t.Fatalf("CheckFields: %v", err)
			}
			err := c.CheckValues()
			switch {
			case tt.bad == "" && err != nil:
				t.Fatalf("refused a valid change: %v", err)
			case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)):
				t.Fatalf("CheckValues = %v, want an error naming %s", err, tt.bad)
			case err != nil && strings.Contains(err.Error(), "pas-une-adresse"):
				t.Fatalf("the error quotes the value: %v", err)
			}
		})
	}
}

func fieldNum(t *testing.T, k domain.Kind, name string) uint64 {
	t.Helper()
	for _, f := range domain.Fields(k) {
		if f.Name == name {
			return f.Num
		}
	}
	t.Fatalf("%s has no field %s", k, name)
	return 0
}
