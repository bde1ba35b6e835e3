package sqlite

import (
	"context"
	"io"
	"testing"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/sqlitex"
)

// A report from a second process (`hub stats` beside `hub serve`) while
// the other holds the write lock longer than the busy timeout reads the
// facts as they are instead of failing with "database is locked".
func TestReportBesideABusyWriterReads(t *testing.T) {
	w := seedFacts(t)
	other, err := Open(context.Background(), w.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// New work the second handle has not brought its facts up to.
	w.apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: newID(900), Date: "2026-06-01", Type: "individuel", Duree: 15,
		Commune: "54395", Thematiques: []string{"courriels"}})

	hold, err := sqlitex.OpenWriter(w.path)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	tx, err := hold.Begin() // immediate: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE facts_meta SET value = value WHERE key = 'hseq'`); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteActivitiesCSV(context.Background(), io.Discard, other, year2026, report.Scope{}, report.Options{}, report.ExportInfo{}); err != nil {
		t.Fatalf("a report beside a busy writer failed: %v", err)
	}
}
