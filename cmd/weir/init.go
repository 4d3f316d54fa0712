package main

import "github.com/weir-dev/weir/exec"

// init hands the process over to the sandbox entry points before main runs
// when the binary was re-executed as a container's init ("weir init") or as
// the in-sandbox seccomp shim; otherwise it returns at once.
func init() { exec.Init() }
