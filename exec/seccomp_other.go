//go:build !amd64

package exec

// installSeccomp is only implemented for amd64; elsewhere sandboxes refuse
// to start rather than run a node without its syscall filter.
func installSeccomp() error { return ErrUnsupported }

// seccompProgram is empty: the C shim refuses an empty program.
func seccompProgram() []byte { return nil }
