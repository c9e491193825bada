package patrol

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// StatusNote is a note an operator posts on the public status page, such as
// "Payments are slow; we are rolling back the 14:02 deploy". Service names the
// service it is about as the page lists it; empty means the page as a whole.
type StatusNote struct {
	ID      string `json:"id"`
	Service string `json:"service,omitempty"`
	// State is where the incident stands: one of NoteStates.
	State     string    `json:"state"`
	Text      string    `json:"text"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

// NoteStates are the states a StatusNote may give, in the order an incident passes
// through them (the words of common status pages).
var NoteStates = []string{"investigating", "identified", "monitoring", "resolved"}

// MaxNoteText bounds a note's text, in characters.
const MaxNoteText = 2000

// NoteError is a StatusNote refused by Validate; Field names the JSON field at fault.
type NoteError struct {
	Field, Reason string
}

func (e *NoteError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks a note before it is stored. An empty State means "investigating".
func (n *StatusNote) Validate() error {
	n.Text = strings.TrimSpace(n.Text)
	n.Service = strings.TrimSpace(n.Service)
	switch {
	case n.Text == "":
		return &NoteError{"text", "empty: say what customers should know"}
	case utf8.RuneCountInString(n.Text) > MaxNoteText:
		return &NoteError{"text", fmt.Sprintf("%d characters, at most %d", utf8.RuneCountInString(n.Text), MaxNoteText)}
	case !utf8.ValidString(n.Text):
		return &NoteError{"text", "not valid UTF-8"}
	case !utf8.ValidString(n.Service):
		return &NoteError{"service", "not valid UTF-8"}
	case strings.ContainsFunc(n.Text, control):
		return &NoteError{"text", "holds a control character; only line breaks and tabs are allowed"}
	case strings.ContainsFunc(n.Service, control) || strings.ContainsRune(n.Service, '\n'):
		return &NoteError{"service", "holds a control character"}
	case len(n.Service) > 200:
		return &NoteError{"service", "longer than 200 bytes"}
	}
	if n.State == "" {
		n.State = NoteStates[0]
	}
	if !slices.Contains(NoteStates, n.State) {
		return &NoteError{"state", fmt.Sprintf("%q: want %s", n.State, strings.Join(NoteStates, ", "))}
	}
	return nil
}

// control reports the characters a note may not hold: C0 controls but line breaks and
// tabs, DEL and C1 controls.
func control(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t' && r != '\r') || (r >= 0x7f && r < 0xa0)
}
