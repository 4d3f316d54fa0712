package main

import (
	"log/slog"
	"os"
)

// offlineLogger is the logger of the commands that run without weir serve
// (weir data ..., a local weir query, weir sandbox-run): warnings and
// errors, Pebble's and the catalog's and the sandbox's, go to stderr;
// nothing goes through the global logger.
func offlineLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
