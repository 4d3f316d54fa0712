//go:build duckdbpeer

package main

import (
	"context"
	"sync"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/node"
	"github.com/weir-dev/weir/hooks/pipeline"
)

func init() {
	newInProcessSQL = func() pipeline.SQLParser { return &inProcessSQL{} }
}

// inProcessSQL parses a plan's SQL with DuckDB in this process, opened
// once (node.Parser), as the server did before weir-node parsed it in a
// sandbox.
type inProcessSQL struct {
	mu  sync.Mutex
	p   *node.Parser
	err error
}

func (s *inProcessSQL) ParseSQL(ctx context.Context, queries []string) ([]pipeline.SQLParse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil && s.err == nil {
		s.p, s.err = node.OpenParser(context.Background())
	}
	if s.err != nil {
		return nil, s.err
	}
	ans, err := s.p.Parse(ctx, queries)
	if err != nil {
		return nil, err
	}
	return hooks.FromSQLAnswer(ans), nil
}
