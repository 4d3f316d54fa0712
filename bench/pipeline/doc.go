// Package pipeline benchmarks a pipeline push: the examples/orders
// pipeline (a seed, a SQL model, a Python model and an expectation) run by
// the pre-receive hook, every node in its own sandbox, with one data commit
// at the end, against its named peer measured in the same run: the same
// four node runners called in process, with no sandbox and no catalog.
// The ratio is the price of isolation and Iceberg bookkeeping per push.
//
//	go test ./bench/pipeline -bench . -benchtime 3x
package pipeline
