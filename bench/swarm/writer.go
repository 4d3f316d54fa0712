package main

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the REST client
	"github.com/apache/iceberg-go/table"
)

// The background writer's table: on main, read by no node.
var (
	writerTable  = table.Identifier{"bg", "events"}
	writerSchema = iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "at", Type: iceberg.PrimitiveTypes.String},
	)
	writerArrow = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "at", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
)

const writerRows = 10

// catalog is the writer's REST client of main, with its own token.
func (s *swarm) catalog(ctx context.Context) (icebergcat.Catalog, error) {
	return icebergcat.Load(ctx, "weir", iceberg.Properties{
		"type": "rest", "uri": s.srv.http + "/iceberg", "warehouse": repoName + "@main", "token": s.writer,
	})
}

func (s *swarm) createWriterTable() error {
	ctx := context.Background()
	c, err := s.catalog(ctx)
	if err != nil {
		return err
	}
	if err := c.CreateNamespace(ctx, table.Identifier{writerTable[0]}, nil); err != nil {
		return err
	}
	_, err = c.CreateTable(ctx, writerTable, writerSchema)
	return err
}

// rows is writerRows rows starting at id from.
func rows(from int64) arrow.Table {
	b := array.NewRecordBuilder(memory.DefaultAllocator, writerArrow)
	defer b.Release()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	for i := int64(0); i < writerRows; i++ {
		b.Field(0).(*array.Int64Builder).Append(from + i)
		b.Field(1).(*array.StringBuilder).Append(at)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(writerArrow, []arrow.RecordBatch{rec})
}

// writeLoop appends to bg.events every -writer-every until ctx ends,
// counting appends that landed and that were refused (then it loads the
// table again: a streaming writer's retry).
func (s *swarm) writeLoop(ctx context.Context, p *phase) {
	if *writerEvery <= 0 {
		return
	}
	note := func(err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err == nil {
			p.writerOK++
			return
		}
		p.writerBad++
		if p.writerErr == "" {
			p.writerErr = err.Error()
		}
	}
	c, err := s.catalog(ctx)
	if err != nil {
		note(fmt.Errorf("load the REST catalog: %w", err))
		return
	}
	var tbl *table.Table
	var next int64
	for ctx.Err() == nil {
		if tbl == nil {
			if tbl, err = c.LoadTable(ctx, writerTable); err != nil {
				if ctx.Err() == nil {
					note(fmt.Errorf("load %v: %w", writerTable, err))
				}
				tbl = nil
				sleep(ctx, *writerEvery)
				continue
			}
		}
		t := rows(next)
		nt, err := tbl.AppendTable(ctx, t, writerRows, nil)
		t.Release()
		if ctx.Err() != nil {
			return // cut off at the end of the phase: neither ok nor refused
		}
		note(err)
		if err != nil {
			tbl = nil
		} else {
			tbl = nt
			next += writerRows
		}
		sleep(ctx, *writerEvery)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
