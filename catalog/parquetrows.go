package catalog

import (
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// ParquetRows is the row count the footer of the Parquet file at path
// states: what the pipeline hook reports for a node's output, read by the
// server from the file itself (the same footer the table's snapshot
// summary counts), never taken from the node.
func ParquetRows(path string) (int64, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not a Parquet file: %v", ErrBadWrite, path, err)
	}
	defer rdr.Close()
	return rdr.NumRows(), nil
}
