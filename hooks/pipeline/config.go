package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ConfigFile is the optional configuration file at the root of a commit.
const ConfigFile = "weir.toml"

// Config is weir.toml:
//
//	namespace   = "main"      # namespace of unqualified tables (default "main")
//	runtime     = "host"      # default runtime of every node (a model's
//	                          # "# weir: runtime = ..." header beats it)
//	timeout     = "10m"       # default wall-clock limit of every node
//	memory_mb   = 2048        # default memory limit of every node
//	materialize = "replace"   # or "append"
//
//	[node."models/revenue.py"]   # per node, by file path or output table
//	runtime     = "host"
//	timeout     = "2s"
//	memory_mb   = 512
//	cpus        = 0.5
//	materialize = "append"
//
// Unknown keys are refused so that a typo does not silently do nothing.
type Config struct {
	Namespace string `toml:"namespace"`
	NodeConfig
	Node map[string]NodeConfig `toml:"node"`
}

// NodeConfig is the per-node part of Config; zero fields inherit.
type NodeConfig struct {
	Runtime     string  `toml:"runtime"`
	Timeout     string  `toml:"timeout"`
	MemoryMB    int64   `toml:"memory_mb"`
	CPUs        float64 `toml:"cpus"`
	Materialize string  `toml:"materialize"`
}

// parseConfig decodes weir.toml; problems go to perr.
func parseConfig(src []byte, perr *Error) Config {
	var c Config
	md, err := toml.Decode(string(src), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			perr.add(ConfigFile, pe.Position.Line, "%s", pe.Message)
		} else {
			perr.add(ConfigFile, 0, "%v", err)
		}
		return Config{Namespace: "main"}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		perr.add(ConfigFile, 0, "unknown key %s (known: namespace, runtime, timeout, memory_mb, cpus, materialize, [node.\"<file or table>\"])", strings.Join(keys, ", "))
	}
	if c.Namespace == "" {
		c.Namespace = "main"
	} else if !ValidIdent(c.Namespace) {
		perr.add(ConfigFile, 0, "namespace %q is not a valid name (lower case letters, digits and _)", c.Namespace)
		c.Namespace = "main"
	}
	checkNodeConfig("", c.NodeConfig, perr)
	keys := make([]string, 0, len(c.Node))
	for k := range c.Node {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		checkNodeConfig(k, c.Node[k], perr)
	}
	return c
}

func checkNodeConfig(key string, nc NodeConfig, perr *Error) {
	where := ""
	if key != "" {
		where = fmt.Sprintf("[node.%q] ", key)
	}
	if nc.Timeout != "" {
		d, err := time.ParseDuration(nc.Timeout)
		if err != nil || d <= 0 {
			perr.add(ConfigFile, 0, "%stimeout %q is not a positive duration such as \"2s\" or \"10m\"", where, nc.Timeout)
		}
	}
	if nc.MemoryMB < 0 {
		perr.add(ConfigFile, 0, "%smemory_mb must be positive", where)
	}
	if nc.CPUs < 0 {
		perr.add(ConfigFile, 0, "%scpus must be positive", where)
	}
	switch Materialization(nc.Materialize) {
	case "", Replace, Append:
	default:
		perr.add(ConfigFile, 0, "%smaterialize %q must be \"replace\" or \"append\"", where, nc.Materialize)
	}
}

// apply fills n's runtime, limits and materialization from the defaults
// and from the [node."..."] table matching its file or its output.
func (c *Config) apply(n *Node) {
	merged := c.NodeConfig
	over := func(nc NodeConfig) {
		if nc.Runtime != "" {
			merged.Runtime = nc.Runtime
		}
		if nc.Timeout != "" {
			merged.Timeout = nc.Timeout
		}
		if nc.MemoryMB > 0 {
			merged.MemoryMB = nc.MemoryMB
		}
		if nc.CPUs > 0 {
			merged.CPUs = nc.CPUs
		}
		if nc.Materialize != "" {
			merged.Materialize = nc.Materialize
		}
	}
	if nc, ok := c.Node[n.Name]; ok {
		over(nc)
	}
	if nc, ok := c.Node[n.File]; ok {
		over(nc)
	}
	n.Runtime = merged.Runtime
	if n.Runtime == "" {
		n.Runtime = "host"
	}
	if d, err := time.ParseDuration(merged.Timeout); err == nil && d > 0 {
		n.Limits.Wall = d
	}
	if merged.MemoryMB > 0 {
		n.Limits.Memory = merged.MemoryMB << 20
	}
	if merged.CPUs > 0 {
		n.Limits.CPU = merged.CPUs
	}
	n.Materialize = Materialization(merged.Materialize)
	if n.Materialize == "" {
		n.Materialize = Replace
	}
}

// nodeRuntime is the runtime weir.toml's [node."..."] tables set for n
// ("" if none does).
func (c *Config) nodeRuntime(n *Node) string {
	rt := ""
	if nc, ok := c.Node[n.Name]; ok && nc.Runtime != "" {
		rt = nc.Runtime
	}
	if nc, ok := c.Node[n.File]; ok && nc.Runtime != "" {
		rt = nc.Runtime
	}
	return rt
}

// unusedNodeKeys returns the [node."..."] keys that match no node.
func (c *Config) unusedNodeKeys(nodes []*Node) []string {
	used := map[string]bool{}
	for _, n := range nodes {
		used[n.Name] = true
		used[n.File] = true
	}
	var out []string
	for k := range c.Node {
		if !used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
