package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Status is how a node ended, as its runner reports it.
type Status string

// Statuses.
const (
	StatusOK     Status = "ok"     // the node succeeded: its outputs are in /out
	StatusFailed Status = "failed" // the node failed: Result.Message says why
	// StatusExpectationFailed: an expectation returned rows
	// (Result.FailingRows of them).
	StatusExpectationFailed Status = "expectation-failed"
)

// Bounds of a result.
const (
	MaxResult  = 8 << 10 // bytes of an encoded result
	MaxMessage = 2 << 10 // bytes of Result.Message
)

// Result is what the runner reports at the end of a node: one JSON object
// on one line, exactly as Encode writes it,
//
//	{"status":"ok"}
//	{"status":"failed","message":"weir node sql: Binder Error: ..."}
//	{"status":"expectation-failed","failing_rows":5}
//
// and nothing else: no other field, no other spelling, no second line.
type Result struct {
	Status Status `json:"status"`
	// Message says why the node failed: one line of at most MaxMessage
	// bytes of printable UTF-8. Only with StatusFailed, where it is
	// required.
	Message string `json:"message,omitempty"`
	// FailingRows is how many rows the expectation returned. Only with
	// StatusExpectationFailed, where it is at least 1.
	FailingRows int64 `json:"failing_rows,omitempty"`
}

// Errors of Parse and Encode.
var (
	ErrNoResult  = errors.New("contract: no result")
	ErrBadResult = errors.New("contract: malformed result")
)

// OK is the result of a node that succeeded.
func OK() Result { return Result{Status: StatusOK} }

// Failed is the result of a node that failed for reason, made one valid
// line (OneLine).
func Failed(reason string) Result {
	m := OneLine(reason, MaxMessage)
	if m == "" {
		m = "failed"
	}
	return Result{Status: StatusFailed, Message: m}
}

// ExpectationFailed is the result of an expectation that returned n > 0
// rows.
func ExpectationFailed(n int64) Result {
	return Result{Status: StatusExpectationFailed, FailingRows: n}
}

// OneLine makes s one line of printable UTF-8 of at most max bytes (max
// at least 3): invalid UTF-8 becomes U+FFFD, runs of white space one
// space, other characters that are not printable (control and format
// characters: ANSI escapes, bidi overrides) are dropped, and a line too
// long is cut at a character boundary and ends in "...".
func OneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case !printable(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) <= max {
		return out
	}
	cut := max - len("...")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	if cut < 0 {
		cut = 0
	}
	return out[:cut] + "..."
}

// printable reports whether r may appear in a message: a letter, mark,
// number, punctuation or symbol (no control or format character: no ANSI
// escape, no bidi override, nothing unassigned).
func printable(r rune) bool { return unicode.IsPrint(r) }

// check says what is wrong with r ("" if nothing).
func (r Result) check() string {
	switch r.Status {
	case StatusOK:
		if r.Message != "" || r.FailingRows != 0 {
			return "status ok with a message or failing rows"
		}
	case StatusFailed:
		if r.Message == "" {
			return "status failed without a message"
		}
		if r.FailingRows != 0 {
			return "status failed with failing rows"
		}
	case StatusExpectationFailed:
		if r.FailingRows < 1 {
			return "status expectation-failed without failing rows"
		}
		if r.Message != "" {
			return "status expectation-failed with a message"
		}
	default:
		return fmt.Sprintf("unknown status %q", r.Status)
	}
	if len(r.Message) > MaxMessage {
		return fmt.Sprintf("message of %d bytes, more than %d", len(r.Message), MaxMessage)
	}
	if r.Message != OneLine(r.Message, MaxMessage) {
		return "message is not one line of printable UTF-8"
	}
	return ""
}

// Encode is r's one encoding: compact JSON and a newline.
func (r Result) Encode() ([]byte, error) {
	if why := r.check(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrBadResult, why)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResult, err)
	}
	if len(b)+1 > MaxResult {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadResult, len(b)+1, MaxResult)
	}
	return append(b, '\n'), nil
}

// Parse reads a result as the runner reported it. It accepts exactly what
// Encode makes of a valid Result: anything else (empty, too long, another
// field, another spelling, a second value, an invalid combination) is an
// error wrapping ErrNoResult or ErrBadResult.
func Parse(b []byte) (Result, error) {
	var r Result
	if len(b) == 0 {
		return r, ErrNoResult
	}
	if len(b) > MaxResult {
		return r, fmt.Errorf("%w: %d bytes, more than %d", ErrBadResult, len(b), MaxResult)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrBadResult, err)
	}
	if why := r.check(); why != "" {
		return Result{}, fmt.Errorf("%w: %s", ErrBadResult, why)
	}
	// One encoding only: a result that is not byte for byte what Encode
	// makes of it (case-folded or repeated keys, spacing, escapes, a
	// second value) is refused.
	if canon, err := r.Encode(); err != nil || !bytes.Equal(canon, b) {
		return Result{}, fmt.Errorf("%w: not in canonical form", ErrBadResult)
	}
	return r, nil
}
