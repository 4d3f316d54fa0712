package exec_test

import (
	"os"
	"testing"

	"github.com/weir-dev/weir/exec"
)

// TestMain lets the test binary act as the container init and the
// in-sandbox shim, as the weir binary does.
func TestMain(m *testing.M) {
	exec.Init()
	os.Exit(m.Run())
}
