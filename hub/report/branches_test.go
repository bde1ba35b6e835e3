package report

import (
	"reflect"
	"testing"

	"numeribus/internal/territoire"
)

// The branches a Source reads: départements and EPCI whole, communes by
// their EPCI or, outside any, by their département; never a région.
func TestBranches(t *testing.T) {
	x := territoire.Default()
	tests := []struct {
		name  string
		areas []Territory
		want  []Branch
	}{
		{"a département and an EPCI", []Territory{{Level: Departement, Code: "54"}, {Level: EPCI, Code: "200034825"}},
			[]Branch{{Departements: []string{"54"}}, {EPCIs: []string{"200034825"}}}},
		{"communes of one EPCI, of another, and outside any", []Territory{{Level: Commune, Code: "88160"},
			{Level: Commune, Code: "29155"}, {Level: Commune, Code: "88413"}, {Level: Commune, Code: "22016"}},
			[]Branch{{EPCIs: []string{"200068757"}, Communes: []string{"88160"}}, {EPCIs: []string{"200071066"}, Communes: []string{"88413"}},
				{Departements: []string{"29"}, Communes: []string{"29155"}}, {Departements: []string{"22"}, Communes: []string{"22016"}}}},
		{"an unknown commune alone", []Territory{{Level: Commune, Code: "99999"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Query{Areas: tt.areas}.Branches(x)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Branches = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	all, err := Query{}.Branches(x)
	if err != nil || len(all) != 1 || all[0].Departements[0] != "" || len(all[0].Departements) != len(x.Departements())+1 {
		t.Fatalf("everywhere: %d branches, %v", len(all), err)
	}
	if _, err := (Query{Areas: []Territory{{Level: Region, Code: "44"}}}).Branches(x); err == nil {
		t.Fatal("a région area was taken")
	}
}
