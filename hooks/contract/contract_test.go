package contract

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Result
		err  error
	}{
		{"ok", "{\"status\":\"ok\"}\n", OK(), nil},
		{"failed", "{\"status\":\"failed\",\"message\":\"weir node sql: boom\"}\n", Failed("weir node sql: boom"), nil},
		{"expectation", "{\"status\":\"expectation-failed\",\"failing_rows\":5}\n", ExpectationFailed(5), nil},
		{"empty", "", Result{}, ErrNoResult},
		{"no newline", "{\"status\":\"ok\"}", Result{}, ErrBadResult},
		{"second value", "{\"status\":\"ok\"}\n{\"status\":\"ok\"}\n", Result{}, ErrBadResult},
		{"trailing junk", "{\"status\":\"ok\"}\nweir-rows main.x 999\n", Result{}, ErrBadResult},
		{"leading junk", "PAR1{\"status\":\"ok\"}\n", Result{}, ErrBadResult},
		{"space", "{\"status\": \"ok\"}\n", Result{}, ErrBadResult},
		{"case-folded key", "{\"STATUS\":\"ok\"}\n", Result{}, ErrBadResult},
		{"repeated key", "{\"status\":\"failed\",\"status\":\"ok\"}\n", Result{}, ErrBadResult},
		{"unknown field", "{\"status\":\"ok\",\"rows\":999}\n", Result{}, ErrBadResult},
		{"unknown status", "{\"status\":\"passed\"}\n", Result{}, ErrBadResult},
		{"ok with rows", "{\"status\":\"ok\",\"failing_rows\":3}\n", Result{}, ErrBadResult},
		{"failed without message", "{\"status\":\"failed\"}\n", Result{}, ErrBadResult},
		{"expectation without rows", "{\"status\":\"expectation-failed\"}\n", Result{}, ErrBadResult},
		{"negative rows", "{\"status\":\"expectation-failed\",\"failing_rows\":-1}\n", Result{}, ErrBadResult},
		{"escape in message", "{\"status\":\"failed\",\"message\":\"\\u001b[2Kweir: main advanced\"}\n", Result{}, ErrBadResult},
		{"newline in message", "{\"status\":\"failed\",\"message\":\"a\\nweir: main advanced\"}\n", Result{}, ErrBadResult},
		{"too long", "{\"status\":\"failed\",\"message\":\"" + strings.Repeat("x", MaxResult) + "\"}\n", Result{}, ErrBadResult},
		{"not json", "weir-rows main.x 999\n", Result{}, ErrBadResult},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Parse(%q) error %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 64, "plain"},
		{"  two\n\nlines\r\n", 64, "two lines"},
		{"\x1b[2K\rweir: main advanced", 64, "[2K weir: main advanced"},
		{"bell\a back\bspace", 64, "bell backspace"},
		{"bidi \u202eevil\u202c", 64, "bidi evil"},
		{"c1 \u009b31m", 64, "c1 31m"},
		{"bad \xff utf8", 64, "bad \uFFFD utf8"},
		{strings.Repeat("é", 10), 11, "éééé..."},
		{"abcdefghij", 3, "..."},
	} {
		if got := OneLine(tc.in, tc.max); got != tc.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestArgsRoundTrip(t *testing.T) {
	for _, a := range []Args{
		{Kind: KindSQL, Source: "/in/_code/x.sql", ResultFD: NoResult},
		{Kind: KindPython, Source: "/in/_code/x.py", Namespace: "main", Inputs: []string{"main.a", "raw.b"},
			Outputs: []string{"main.x", "main.y"}, Threads: 2, MemoryLimit: 1 << 30, Gate: true, ResultFD: 3},
		{Kind: KindExpect, Source: "s", ResultFD: 7, DirIn: "/a", DirOut: "/b", DirTmp: "/c"},
		{Kind: KindPython, Source: "/in/_code/x.py", File: "models/x.py", Runtime: "pandas", ResultFD: NoResult},
	} {
		argv := a.Argv()
		if argv[0] != Command {
			t.Fatalf("argv %q does not start with %q", argv, Command)
		}
		got, err := ParseArgs(argv[1:])
		if err != nil {
			t.Fatalf("ParseArgs(%q): %v", argv, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip of %+v gave %+v", a, got)
		}
	}
	for _, bad := range [][]string{
		nil,
		{"rm"},
		{KindSQL},
		{KindSQL, "--source", "x", "--result-fd", "1"},
		{KindSQL, "--source", "x", "extra"},
		{KindSQL, "--source", "x", "--nope"},
	} {
		if _, err := ParseArgs(bad); !errors.Is(err, ErrArgs) {
			t.Errorf("ParseArgs(%q) = %v, want ErrArgs", bad, err)
		}
	}
}

// FuzzParse: Parse never panics, accepts only what Encode makes (so a
// result it accepts encodes back to the same bytes), and whatever Failed
// makes of any reason encodes and parses back.
func FuzzParse(f *testing.F) {
	for _, r := range []Result{OK(), Failed("weir node sql: Binder Error: x"), ExpectationFailed(12)} {
		b, err := r.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{\"status\":\"ok\"}\n{\"status\":\"ok\"}\n"))
	f.Add([]byte("weir-rows main.x 999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err == nil {
			canon, eerr := r.Encode()
			if eerr != nil || string(canon) != string(b) {
				t.Fatalf("Parse accepted %q, which encodes as %q (%v)", b, canon, eerr)
			}
		}
		msg := Failed(string(b))
		enc, err := msg.Encode()
		if err != nil {
			t.Fatalf("Failed(%q) does not encode: %v", b, err)
		}
		back, err := Parse(enc)
		if err != nil || back != msg {
			t.Fatalf("Failed(%q) round trip: %+v %v", b, back, err)
		}
		if !utf8.ValidString(msg.Message) || len(msg.Message) > MaxMessage {
			t.Fatalf("Failed(%q) message %q", b, msg.Message)
		}
	})
}
