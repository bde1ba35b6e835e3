package change

import (
	"fmt"
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
			// Check, the hub's one-decoding path, says the same.
			r, cerr := c.Check()
			if fmt.Sprint(cerr) != fmt.Sprint(err) {
				t.Fatalf("Check = %v, CheckValues = %v", cerr, err)
			}
			if r == nil || r.Kind() != tt.kind || r.RecordID() != c.ID {
				t.Fatalf("Check returned the record %#v", r)
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

// Check refuses what CheckFields refuses, with the same error, before any
// value is looked at; a change that sets nothing passes with no record.
func TestCheckRefusesWhatCheckFieldsRefuses(t *testing.T) {
	text, err := Marshal("x")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		c      Change
		bad    string // a word of the error; "" when it passes
		record bool   // a record is returned
	}{
		{"an unknown field", Change{Kind: domain.KindActivity, Op: OpUpsert, Fields: Fields{999: Null}}, "no field 999", false},
		{"the id among the fields", Change{Kind: domain.KindActivity, Op: OpUpsert, Fields: Fields{domain.IDField: Null}}, "no field 1", false},
		{"a text where a number goes", Change{Kind: domain.KindActivity, Op: OpUpsert, Fields: Fields{4: text}}, "decoding activity", false},
		{"a delete", Change{Kind: domain.KindActivity, Op: OpDelete}, "", false},
		{"an upsert without fields", Change{Kind: domain.KindActivity, Op: OpUpsert}, "", false},
		{"a valid field", Change{Kind: domain.KindActivity, Op: OpUpsert, Fields: Fields{4: Null}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.ID = ident.New()
			want := tt.c.CheckFields()
			r, err := tt.c.Check()
			if fmt.Sprint(err) != fmt.Sprint(want) {
				t.Fatalf("Check = %v, CheckFields = %v", err, want)
			}
			if (tt.bad == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.bad)) {
				t.Fatalf("Check = %v, want an error naming %q", err, tt.bad)
			}
			if (r != nil) != tt.record {
				t.Fatalf("Check returned the record %#v", r)
			}
		})
	}
}
