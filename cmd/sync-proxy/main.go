// Command sync-proxy lets a group of beacon nodes drive a group of execution clients over
// the Engine API, redundantly. See the README for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sync-proxy/sync-proxy/internal/config"
	"github.com/sync-proxy/sync-proxy/internal/daemon"
)

// Set by the linker: -X main.version=… -X main.commit=….
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, lookup, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sync-proxy: bad configuration:\n%s\n", indent(err))
		return 2
	}
	if cfg.Version {
		fmt.Fprintf(stdout, "sync-proxy %s (commit %s)\n", version, commit)
		return 0
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "sync-proxy: bad configuration:\n%s\n", indent(err))
		return 2
	}
	log := newLogger(cfg, stderr)
	d, err := daemon.New(cfg, daemon.Build{Version: version, Commit: commit}, log)
	if err != nil {
		fmt.Fprintf(stderr, "sync-proxy: cannot start:\n%s\n", indent(err))
		return 2
	}
	if err := d.Run(ctx); err != nil {
		log.Error("sync-proxy failed", "error", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// indent prints each joined error on its own line.
func indent(err error) string {
	var out string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out += "  - " + e.Error() + "\n"
	}
	walk(err)
	return out
}
