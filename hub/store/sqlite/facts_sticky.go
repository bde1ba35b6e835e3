package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"numeribus/internal/domain"
	"numeribus/internal/merge"
)

// An erasure leaves the statistics as they were (docs/SECURITY.md,
// "Retention"). The merged state of an erased record no longer says what
// the erasure took, so a fact rewritten from it keeps, from the row it
// replaces:
//
//   - a person's "suivi" (followed by name): an erased person was followed
//     in the periods the reports cover, and stays counted so;
//   - an assessment's link to its person, when that person's record is
//     erased too (a retention purge, or an erasure of the person, takes
//     both): it then links anonymous records only, and the progression
//     between a person's first and last assessment is still counted. An
//     assessment unlinked while its person keeps their identity (consent
//     to diagnostics withdrawn) loses the link, as the person asked.
//
// A rebuild of the facts from the records (backfill) cannot know them:
// it counts erased people as anonymous and their assessments unlinked.

// sticky gathers the erased people and assessments a fact writer
// rewrites.
type sticky struct {
	people, assessments []any // ids, as statement arguments
}

// note remembers record id (its argument form) of kind k if erased.
func (s *sticky) note(k domain.Kind, id any, st *merge.State) {
	if !st.IsErased() {
		return
	}
	switch k {
	case domain.KindBeneficiary:
		s.people = append(s.people, id)
	case domain.KindAssessment:
		s.assessments = append(s.assessments, id)
	}
}

// kept is what the rows about to be replaced said.
type kept struct {
	followed []any    // people whose row said suivi
	links    [][2]any // assessment, person
}

// read reads, before the rows are replaced, what they said.
func (s *sticky) read(ctx context.Context, tx *sql.Tx) (kept, error) {
	var k kept
	for _, ids := range chunks(s.people) {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM beneficiary_facts WHERE suivi = 1 AND id IN (`+marks(len(ids))+`)`, ids...)
		if err != nil {
			return k, fmt.Errorf("reading erased people's facts: %w", err)
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return k, err
			}
			k.followed = append(k.followed, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return k, err
		}
	}
	for _, ids := range chunks(s.assessments) {
		rows, err := tx.QueryContext(ctx, `SELECT id, beneficiaire FROM assessment_facts WHERE beneficiaire IS NOT NULL AND id IN (`+marks(len(ids))+`)`, ids...)
		if err != nil {
			return k, fmt.Errorf("reading erased assessments' facts: %w", err)
		}
		for rows.Next() {
			var id, ben []byte
			if err := rows.Scan(&id, &ben); err != nil {
				rows.Close()
				return k, err
			}
			k.links = append(k.links, [2]any{id, ben})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return k, err
		}
	}
	return k, nil
}

// write puts back, once the rows are replaced, what they said.
func (k kept) write(ctx context.Context, tx *sql.Tx) error {
	for _, ids := range chunks(k.followed) {
		if _, err := tx.ExecContext(ctx, `UPDATE beneficiary_facts SET suivi = 1 WHERE id IN (`+marks(len(ids))+`)`, ids...); err != nil {
			return fmt.Errorf("keeping erased people followed: %w", err)
		}
	}
	for _, l := range k.links {
		if _, err := tx.ExecContext(ctx, `UPDATE assessment_facts SET beneficiaire = ?1 WHERE id = ?2
			AND EXISTS (SELECT 1 FROM records WHERE id = ?1 AND erased)`, l[1], l[0]); err != nil {
			return fmt.Errorf("keeping an erased assessment's link: %w", err)
		}
	}
	return nil
}

// chunks cuts ids into runs a statement takes.
func chunks(ids []any) [][]any {
	var out [][]any
	for len(ids) > 0 {
		n := min(len(ids), 500)
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	return out
}

func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
