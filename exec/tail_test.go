package exec

import (
	"bytes"
	"strings"
	"testing"
)

func TestTailWholeLinesAndBound(t *testing.T) {
	var live bytes.Buffer
	var writes []string
	w := writerFunc(func(p []byte) (int, error) {
		writes = append(writes, string(p))
		return live.Write(p)
	})
	tl := newTail(8, w)
	for _, chunk := range []string{"ab", "c\nde", "f\ng\nh", "ij"} {
		tl.Write([]byte(chunk))
	}
	tl.flush()
	if got, want := strings.Join(writes, "|"), "abc\n|def\ng\n|hij"; got != want {
		t.Errorf("forwarded %q, want %q", got, want)
	}
	if got := string(tl.bytes()); got != "ef\ng\nhij" { // the last 8 bytes
		t.Errorf("tail %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
