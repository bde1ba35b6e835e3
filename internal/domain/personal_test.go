package domain

import (
	"reflect"
	"testing"
)

// Every field tagged personal, alone, makes a beneficiary identified, and
// nothing else does.
func TestIdentifiedFollowsThePersonalTags(t *testing.T) {
	rt := reflect.TypeFor[Beneficiary]()
	n := 0
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		var b Beneficiary
		f := reflect.ValueOf(&b).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int:
			f.SetInt(1980)
		default:
			continue
		}
		personal := sf.Tag.Get("personal") == "true"
		if personal {
			n++
		}
		if got := b.Identified(); got != personal {
			t.Errorf("only %s set: Identified() = %v, want %v", sf.Name, got, personal)
		}
	}
	if n != len(PersonalFields(KindBeneficiary)) || n == 0 {
		t.Errorf("%d personal fields checked, %d tagged", n, len(PersonalFields(KindBeneficiary)))
	}
}

// A consent withdrawn as a whole (retire_le, as an import may bring it) is
// in force for no purpose, whatever its purposes and partial withdrawals say.
func TestWithdrawnConsentIsNotActive(t *testing.T) {
	c := Consent{Finalites: []string{"suivi_nominatif", "diagnostic"}}
	if len(c.Active()) != 2 {
		t.Fatalf("a consent in force: %v", c.Active())
	}
	c.RetireLe = "2026-03-01"
	if a := c.Active(); len(a) != 0 {
		t.Errorf("withdrawn on %s, still active for %v", c.RetireLe, a)
	}
	c = Consent{Finalites: []string{"suivi_nominatif", "diagnostic"}, Retraits: []string{"diagnostic"}}
	if a := c.Active(); len(a) != 1 || a[0] != "suivi_nominatif" {
		t.Errorf("diagnostic withdrawn: active %v", a)
	}
}
