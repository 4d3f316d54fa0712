//go:build !linux

package node

import (
	"errors"
	"os"
)

// claimResult needs Linux (prctl): a runner elsewhere reports no result.
func claimResult(int) (*os.File, error) {
	return nil, errors.New("a result descriptor needs Linux")
}

// killStrays does nothing off Linux (no sandboxes there).
func killStrays() {}
