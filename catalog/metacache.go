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

// readMetadata returns the parsed metadata at loc in the area a, from the
// cache if seen. loc must resolve in a even when it is cached: the cache
// is shared by every repo.
func (c *Catalog) readMetadata(ctx context.Context, a Area, loc string) (table.Metadata, error) {
	rel, err := a.Resolve(loc)
	if err != nil {
		return nil, err
	}
	if m, ok := c.metas.get(loc); ok {
		return m, nil
	}
	fs, err := a.IO(ctx)
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
		return nil, fmt.Errorf("parse %s: %w", rel, err)
	}
	c.metas.put(loc, m)
	c.raw.put(loc, data)
	return m, nil
}

// rawCacheBytes bounds the cache of serialized metadata (bytes).
const rawCacheBytes = 64 << 20

// rawCache holds the JSON of recently written or read metadata files by
// location, oldest dropped first, so that answering a load or a commit
// does not serialize again what is already in the warehouse (every write
// of a batch answers with the same metadata).
type rawCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	order []string
	bytes int
}

func (rc *rawCache) get(loc string) ([]byte, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	b, ok := rc.m[loc]
	return b, ok
}

func (rc *rawCache) put(loc string, b []byte) {
	if len(b) > rawCacheBytes/4 {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[string][]byte{}
	}
	if _, ok := rc.m[loc]; ok {
		return
	}
	for rc.bytes+len(b) > rawCacheBytes && len(rc.order) > 0 {
		old := rc.order[0]
		rc.order = rc.order[1:]
		rc.bytes -= len(rc.m[old])
		delete(rc.m, old)
	}
	rc.m[loc] = b
	rc.order = append(rc.order, loc)
	rc.bytes += len(b)
}

// MetadataJSON returns the JSON of the metadata file at loc if this
// catalog wrote or read it recently: the exact bytes in the warehouse, for
// answering without serializing the metadata again. ok is false when the
// caller must serialize the metadata itself.
func (c *Catalog) MetadataJSON(loc string) (_ []byte, ok bool) { return c.raw.get(loc) }
