package hooks

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// Why a node failed, in one line: the sandbox's reason, the runner's
// result, a Python traceback's exception and line, or the last line the
// node printed.

// lastLines are the last n non-blank lines of a node's output, as they
// are shown to the pusher (after "weir:   | ").
func lastLines(out []byte, n int) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, "\r"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// failReason is the one-line reason a node failed: the sandbox's when it
// stopped the node, else the runner's result (rep, nil without a valid
// one), with a Python traceback's exception and line preferred to the
// runner's summary of it.
func failReason(n *pipeline.Node, res *exec.Result, rep *contract.Result, tail []string) string {
	if res.Reason != exec.ReasonExit {
		if res.Message != "" {
			return res.Message
		}
		return string(res.Reason)
	}
	if rep != nil && rep.Status == contract.StatusExpectationFailed {
		return fmt.Sprintf("%d failing rows", rep.FailingRows)
	}
	if n.Kind == pipeline.KindPython && rep != nil && rep.Status == contract.StatusFailed {
		// The runner's launcher words a missing module itself, naming the
		// runtime and what it has: that beats the traceback's last line.
		msg := strings.TrimPrefix(rep.Message, "weir node python: ")
		if strings.HasPrefix(msg, n.File+": No module named ") && strings.Contains(msg, "; runtime ") {
			return strings.TrimSuffix(msg, " (exit status 1)")
		}
	}
	if n.Kind == pipeline.KindPython {
		staged := exec.InputsDir + "/" + contract.CodeInput + "/" + path.Base(n.File)
		if why := pythonFailure(res.Output, staged, n.File); why != "" {
			return why
		}
	}
	if rep != nil && rep.Status == contract.StatusFailed {
		return rep.Message
	}
	if len(tail) > 0 {
		return tail[len(tail)-1]
	}
	return fmt.Sprintf("exit status %d", res.ExitCode)
}

// pyFrame matches a traceback frame line: File "<path>", line <n>, in <f>.
var pyFrame = regexp.MustCompile(`^\s*File "([^"]+)", line (\d+)`)

// pyException matches the last line of a traceback: "ZeroDivisionError:
// division by zero", "decimal.DivisionByZero: [...]", "KeyError: 'x'".
var pyException = regexp.MustCompile(`^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|[A-Z]\w*))(?::|$)`)

// pythonFailure turns a Python traceback in out into "<exception>: <message>
// at <file>:<line>", the line being the script's own deepest frame (staged is
// the script's path inside the sandbox, file its path in the repo). It
// returns "" when out holds no traceback.
func pythonFailure(out []byte, staged, file string) string {
	lines := strings.Split(string(out), "\n")
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimLeft(lines[i], " |"), "Traceback (most recent call last)") {
			start = i
			break
		}
	}
	if start < 0 {
		return ""
	}
	line, exc := "", ""
	for _, l := range lines[start+1:] {
		l = strings.TrimLeft(l, "|")
		if m := pyFrame.FindStringSubmatch(l); m != nil {
			if m[1] == staged {
				line = m[2]
			}
			continue
		}
		if exc == "" && !strings.HasPrefix(l, " ") && pyException.MatchString(l) {
			exc = clipLine(strings.TrimSpace(l), 160)
		}
	}
	if exc == "" {
		return ""
	}
	if line == "" {
		return exc + " in " + file
	}
	return exc + " at " + file + ":" + line
}
