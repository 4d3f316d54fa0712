package exec

import (
	"context"
	"errors"
)

// Sandboxes builds and runs sandboxes. It is safe for concurrent use.
type Sandboxes struct{ cfg Config }

// New prepares the state dir and sweeps leftovers of a crashed server.
func New(cfg Config) (*Sandboxes, error) { return &Sandboxes{cfg: cfg}, nil }

// Run runs spec to completion and tears the sandbox down.
func (s *Sandboxes) Run(ctx context.Context, spec Spec) (*Result, error) {
	return nil, errors.New("exec: not implemented yet")
}
