package domain

import (
	"fmt"
	"strings"

	"numeribus/internal/apperr"
	"numeribus/internal/ident"
)

// Problem codes, stable for the UI and the API to map to messages.
const (
	ProblemRequired        = "required"
	ProblemUnknownCode     = "unknown_code"
	ProblemInvalid         = "invalid"
	ProblemNotAllowed      = "not_allowed"
	ProblemConsentRequired = "consent_required"
	ProblemUnknownRef      = "unknown_reference"
)

// Problem is one thing wrong with one field of a record. Message is in
// French: it is shown next to the field in the mediator's UI.
type Problem struct {
	Field   string   `json:"field"`
	Value   string   `json:"value,omitempty"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Allowed []string `json:"allowed,omitempty"`
}

func (p Problem) String() string {
	s := p.Field + ": " + p.Message
	if p.Value != "" {
		s = fmt.Sprintf("%s: %s (valeur %q)", p.Field, p.Message, p.Value)
	}
	if len(p.Allowed) > 0 {
		s += "; valeurs permises : " + strings.Join(p.Allowed, ", ")
	}
	return s
}

// ValidationError lists every problem of one record at once, so that a
// mediator fixes a form in one go rather than one error at a time.
type ValidationError struct {
	Kind     Kind
	ID       string
	Problems []Problem
}

// ErrorCode says a record with problems is invalid input (apperr).
func (e *ValidationError) ErrorCode() apperr.Code { return apperr.Invalid }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	what := string(e.Kind)
	if e.ID != "" {
		what += " " + e.ID
	}
	return fmt.Sprintf("%s invalide : %s", what, strings.Join(parts, " ; "))
}

// checker collects problems for one record.
type checker struct{ problems []Problem }

func (c *checker) add(p Problem) { c.problems = append(c.problems, p) }

func (c *checker) required(field, value string) bool {
	if strings.TrimSpace(value) == "" {
		c.add(Problem{Field: field, Code: ProblemRequired, Message: "champ obligatoire"})
		return false
	}
	return true
}

func (c *checker) invalid(field, value, msg string) {
	c.add(Problem{Field: field, Value: value, Code: ProblemInvalid, Message: msg})
}

// between adds a problem with a rule between fields. It is not_allowed,
// never invalid: a change from another device carries only the fields it
// modifies, and the hub refuses invalid values field by field
// (change.CheckValues) — a rule between a field the change sets and one
// it does not would refuse a valid change for good.
func (c *checker) between(field, value, msg string) {
	c.add(Problem{Field: field, Value: value, Code: ProblemNotAllowed, Message: msg})
}

func (c *checker) notAllowed(field, msg string) {
	c.add(Problem{Field: field, Code: ProblemNotAllowed, Message: msg})
}

// code checks one optional code; empty passes.
func (c *checker) code(field string, l *CodeList, value string) {
	if value != "" && !l.Has(value) {
		c.add(Problem{Field: field, Value: value, Code: ProblemUnknownCode, Message: "code inconnu", Allowed: l.Allowed()})
	}
}

// codes checks a set of codes: each known, none repeated.
func (c *checker) codes(field string, l *CodeList, values []string) {
	seen := map[string]bool{}
	for _, v := range values {
		if !l.Has(v) {
			c.add(Problem{Field: field, Value: v, Code: ProblemUnknownCode, Message: "code inconnu", Allowed: l.Allowed()})
		} else if seen[v] {
			c.invalid(field, v, "code en double")
		}
		seen[v] = true
	}
}

func (c *checker) err(k Kind, id ident.ID) error {
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Kind: k, ID: id.String(), Problems: c.problems}
}
