package contract

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Version is the version of this contract: the runner's commands, their
// command lines and what they answer. It changes whenever any of them
// changes in a way the other side would notice.
const Version = 1

// CommandVersion is the runner's first argument for the handshake:
// "<runner> version" prints the runner's Handshake on stdout.
const CommandVersion = "version"

// Handshake is how the server and its runner make sure they belong
// together before the server relies on the runner: the runner prints
// its own, the server compares it with its own and refuses to start with
// a runner that differs.
//
// Contract is the Version the runner speaks. Sources fingerprints the
// source files the runner is built from (the module root package's
// weir.RunnerSources: go.mod, go.sum and the Go files of hooks/contract,
// hooks/node and cmd/weir-node, hashed in path order), embedded at build
// time in both binaries. A runner built from another tree, or from this
// one before a change to any of those files, has another Sources, though
// both binaries are built by "go build" and "go run" without version
// control stamps and though their own executables necessarily differ;
// changes elsewhere (the server's own packages) do not concern the runner
// and do not count.
//
// On the wire it is one line:
//
//	weir-node contract 1 sources 3f9a...(64 hex digits)
type Handshake struct {
	Contract int
	Sources  string // 64 lower-case hex digits
}

// ErrHandshake is a runner's answer to CommandVersion that is not a
// handshake.
var ErrHandshake = errors.New("contract: bad handshake")

var handshakeRE = regexp.MustCompile(`^weir-node contract ([1-9][0-9]{0,8}) sources ([0-9a-f]{64})\n$`)

// Encode is h's line.
func (h Handshake) Encode() []byte {
	return fmt.Appendf(nil, "weir-node contract %d sources %s\n", h.Contract, h.Sources)
}

// ParseHandshake reads a handshake line, exactly as Encode writes it.
func ParseHandshake(b []byte) (Handshake, error) {
	m := handshakeRE.FindSubmatch(b)
	if m == nil {
		return Handshake{}, fmt.Errorf("%w: %q", ErrHandshake, OneLine(string(b), 200))
	}
	v, _ := strconv.Atoi(string(m[1]))
	return Handshake{Contract: v, Sources: string(m[2])}, nil
}

// Check says whether a runner's handshake got matches the server's own,
// want: nil, or an error saying how they differ.
func (want Handshake) Check(got Handshake) error {
	switch {
	case got.Contract != want.Contract:
		return fmt.Errorf("%w: the runner speaks contract %d, weir %d", ErrHandshake, got.Contract, want.Contract)
	case got.Sources != want.Sources:
		return fmt.Errorf("%w: the runner was built from other sources (%.12s) than weir (%.12s)", ErrHandshake, got.Sources, want.Sources)
	}
	return nil
}
