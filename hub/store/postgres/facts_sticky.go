package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// An erasure leaves the statistics as they were, as on SQLite (see its
// facts_sticky.go): a fact rewritten from an erased record's state keeps,
// from the row it replaces, a person's "suivi", and an assessment's link
// to its person when that person's record is erased too. A rebuild of the
// facts from the records cannot know them.

// sticky gathers the erased people and assessments a step rewrites.
type sticky struct {
	people, assessments [][]byte
}

func (s *sticky) note(k domain.Kind, id ident.ID, st *merge.State) {
	if !st.IsErased() {
		return
	}
	switch k {
	case domain.KindBeneficiary:
		s.people = append(s.people, append([]byte(nil), id[:]...))
	case domain.KindAssessment:
		s.assessments = append(s.assessments, append([]byte(nil), id[:]...))
	}
}

// kept is what the rows about to be replaced said.
type kept struct {
	followed [][]byte
	links    [][2][]byte // assessment, person
}

// read reads, before the rows are replaced, what they said.
func (s *sticky) read(ctx context.Context, tx pgx.Tx) (kept, error) {
	var k kept
	if len(s.people) > 0 {
		rows, err := tx.Query(ctx, `SELECT id FROM beneficiary_facts WHERE suivi = 1 AND id = ANY($1)`, s.people)
		if err != nil {
			return k, fmt.Errorf("reading erased people's facts: %w", err)
		}
		if k.followed, err = pgx.CollectRows(rows, pgx.RowTo[[]byte]); err != nil {
			return k, fmt.Errorf("reading erased people's facts: %w", err)
		}
	}
	if len(s.assessments) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, beneficiaire FROM assessment_facts WHERE beneficiaire IS NOT NULL AND id = ANY($1)`, s.assessments)
		if err != nil {
			return k, fmt.Errorf("reading erased assessments' facts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, ben []byte
			if err := rows.Scan(&id, &ben); err != nil {
				return k, err
			}
			k.links = append(k.links, [2][]byte{id, ben})
		}
		if err := rows.Err(); err != nil {
			return k, err
		}
	}
	return k, nil
}

// write puts back, once the rows are replaced, what they said.
func (k kept) write(ctx context.Context, tx pgx.Tx) error {
	if len(k.followed) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE beneficiary_facts SET suivi = 1 WHERE id = ANY($1)`, k.followed); err != nil {
			return fmt.Errorf("keeping erased people followed: %w", err)
		}
	}
	for _, l := range k.links {
		if _, err := tx.Exec(ctx, `UPDATE assessment_facts SET beneficiaire = $1 WHERE id = $2
			AND EXISTS (SELECT 1 FROM records WHERE id = $1 AND erased)`, l[1], l[0]); err != nil {
			return fmt.Errorf("keeping an erased assessment's link: %w", err)
		}
	}
	return nil
}
