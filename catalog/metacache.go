package catalog

import (
	"context"
	"fmt"
	"io"
	"sync"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// metaCacheSize bounds each parsed-file cache (entries).
const metaCacheSize = 1024

// fileCache holds parsed Iceberg files (metadata, manifest lists) by
// location. They are never rewritten (every version has a new name), so
// entries never go stale; the cache only saves reading and parsing them
// on every load.
type fileCache[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

type metaCache = fileCache[table.Metadata]

func (mc *fileCache[T]) get(loc string) (T, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	m, ok := mc.m[loc]
	return m, ok
}

func (mc *fileCache[T]) put(loc string, m T) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.m == nil {
		mc.m = make(map[string]T)
	}
	if len(mc.m) >= metaCacheSize {
		for k := range mc.m { // drop an arbitrary entry
			delete(mc.m, k)
			break
		}
	}
	mc.m[loc] = m
}

// readMetadata returns the parsed metadata at loc, from the cache if seen.
func (c *Catalog) readMetadata(ctx context.Context, loc string) (table.Metadata, error) {
	if m, ok := c.metas.get(loc); ok {
		return m, nil
	}
	fs, err := c.wh.IO(ctx)
	if err != nil {
		return nil, err
	}
	var data []byte
	if rf, ok := fs.(icebergio.ReadFileIO); ok {
		data, err = rf.ReadFile(loc)
	} else {
		var f icebergio.File
		if f, err = fs.Open(loc); err == nil {
			data, err = io.ReadAll(f)
			f.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	m, err := table.ParseMetadataBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", loc, err)
	}
	c.metas.put(loc, m)
	return m, nil
}
