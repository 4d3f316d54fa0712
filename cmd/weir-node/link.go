package main

// DuckDB's Go bindings link with -rdynamic, so that extensions loaded at
// run time can call into DuckDB: every symbol of this binary goes into
// its dynamic symbol table, and at each start the dynamic loader resolves
// libstdc++'s and libc's relocations against that large table too (about
// a fifth of a bare start's CPU; weir-node starts once per pipeline node).
// weir-node loads no extension (hooks/node/doc.go): its symbols stay
// unexported.

// #cgo LDFLAGS: -Wl,--no-export-dynamic
import "C"
