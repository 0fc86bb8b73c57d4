// Package validate collects field violations of a request so that one error
// names every offending field and the rule it broke. The API boundary turns an
// *Error into a gRPC INVALID_ARGUMENT with a google.rpc.BadRequest detail.
package validate

import (
	"errors"
	"fmt"
	"strings"
)

// ErrValidation is matched by every *Error (errors.Is).
var ErrValidation = errors.New("ValidationException")

// Violation is one broken rule on one field. Field is the snake_case path of
// the field in the request, e.g. "tags[3].key".
type Violation struct {
	Field string
	Rule  string
}

// Error is a non-empty list of violations.
type Error struct {
	Violations []Violation
}

// Error renders "field: rule; field: rule".
func (e *Error) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Rule
	}
	return strings.Join(parts, "; ")
}

// Is reports whether target is ErrValidation.
func (e *Error) Is(target error) bool { return target == ErrValidation }

// Checker accumulates violations.
type Checker struct {
	violations []Violation
}

// Add records a violation.
func (c *Checker) Add(field, rule string) {
	c.violations = append(c.violations, Violation{Field: field, Rule: rule})
}

// Addf records a violation with a formatted rule.
func (c *Checker) Addf(field, format string, args ...any) {
	c.Add(field, fmt.Sprintf(format, args...))
}

// Check records rule for field when err is not nil; err's text is appended.
func (c *Checker) Check(field string, err error) {
	if err != nil {
		c.Add(field, err.Error())
	}
}

// Err returns nil when nothing was recorded, else an *Error.
func (c *Checker) Err() error {
	if len(c.violations) == 0 {
		return nil
	}
	return &Error{Violations: append([]Violation(nil), c.violations...)}
}

// Field is a one-violation error.
func Field(field, rule string) error {
	return &Error{Violations: []Violation{{Field: field, Rule: rule}}}
}
