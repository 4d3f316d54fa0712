package catalog

import (
	"encoding/json"
	"errors"
)

// ErrBadUpdate is returned (wrapped) when Iceberg metadata updates cannot be
// applied (malformed update, location outside the warehouse).
var ErrBadUpdate = errors.New("catalog: invalid table update")

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
