package hooks

import (
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// sandboxLimits are the sandbox limits a node's weir.toml asks for (zero
// fields: the server's); the caller caps them at PipelineConfig.MaxLimits.
func sandboxLimits(l pipeline.Limits) exec.Limits {
	return exec.Limits{Wall: l.Wall, Memory: l.Memory, CPU: l.CPU}
}
