// Command sync-proxy-load measures an Engine API hop.
//
//	sync-proxy-load run   --url URL [--jwt-secret FILE] [--shape np-300KB,fcu] [--rate N | --concurrency N] [--duration 10s]
//	sync-proxy-load el    [--listen 127.0.0.1:8551] [--jwt-secret FILE] [--hang] [--delay D] [--status VALID]
//	sync-proxy-load bench --proxy-bin bin/sync-proxy [--nginx /usr/sbin/nginx] [--out FILE] [--quick] [--profile FILE]
//
// run sends realistic newPayloadV4 and forkchoiceUpdatedV3 requests (see internal/loadgen)
// and reports latency percentiles, throughput and every answer that failed the checks. el
// serves a fast fake execution client. bench runs the whole comparison of docs/PERFORMANCE.md:
// the same load direct to a fake EL (the floor), through nginx and through sync-proxy in
// several configurations, on 127.0.0.1 only, and prints a markdown report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: sync-proxy-load run|el|bench [flags]   (sync-proxy-load CMD -h for the flags)`

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case "el":
		err = runEL(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "sync-proxy-load %s: %v\n", args[0], err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "sync-proxy-load %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage marks a bad command line (exit code 2).
var errUsage = errors.New("bad usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// loadSecret reads a JWT secret file; "" means none.
func loadSecret(path string) (*jwtauth.Secret, error) {
	if path == "" {
		return nil, nil
	}
	s, err := jwtauth.LoadSecret(path)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// runLoad is the run subcommand.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "Engine API URL to send to (required)")
	secretPath := fs.String("jwt-secret", "", "secret file: sign a fresh HS256 token per request")
	shapes := fs.String("shape", "np-300KB", "comma-separated shapes: np-1.4KB, np-300KB, np-2MB, np-12MB, fcu, fcu-attrs")
	conc := fs.Int("concurrency", 1, "senders (requests in flight at most)")
	rate := fs.Float64("rate", 0, "requests per second on a fixed schedule (0: closed loop)")
	dur := fs.Duration("duration", 10*time.Second, "how long to send each shape (at most 10m)")
	requests := fs.Int("requests", 0, "stop each shape after this many requests (0: duration only)")
	warmup := fs.Int("warmup", 10, "unrecorded requests sent first")
	expect := fs.String("expect", "", "comma-separated statuses a passing answer may carry (default: any valid)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed for transactions and block hashes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || fs.NArg() > 0 {
		return usageErr("give --url and no arguments")
	}
	secret, err := loadSecret(*secretPath)
	if err != nil {
		return err
	}
	var want loadgen.Expect
	if *expect != "" {
		want.Statuses = strings.Split(*expect, ",")
	}
	next := uint64(0)
	for _, name := range strings.Split(*shapes, ",") {
		shape, err := loadgen.ShapeByName(strings.TrimSpace(name))
		if err != nil {
			return usageErr("%v", err)
		}
		tpl, err := loadgen.NewTemplate(shape, *seed)
		if err != nil {
			return err
		}
		res, err := loadgen.Run(ctx, loadgen.RunConfig{
			URL: *url, Template: tpl, Secret: secret, Concurrency: *conc, Rate: *rate,
			Duration: *dur, Requests: *requests, Warmup: *warmup, StartSeq: next, Expect: want,
		})
		if err != nil {
			return usageErr("%v", err)
		}
		next = res.NextSeq
		printResult(stdout, res)
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// printResult writes a run's summary, its statuses and its errors.
func printResult(w io.Writer, res loadgen.Result) {
	fmt.Fprintln(w, res)
	for _, k := range loadgen.SortedKeys(res.Statuses) {
		fmt.Fprintf(w, "  status %-8s %d\n", k, res.Statuses[k])
	}
	for _, k := range loadgen.SortedKeys(res.Errors) {
		fmt.Fprintf(w, "  error  %-8s %d\n", k, res.Errors[k])
	}
	if res.FirstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", res.FirstErr)
	}
}

// runEL is the el subcommand: a fake EL until interrupted.
func runEL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("el", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8551", "loopback host:port to serve the Engine API on")
	secretPath := fs.String("jwt-secret", "", "secret file: refuse requests without a valid token")
	hang := fs.Bool("hang", false, "read every request and never answer")
	delay := fs.Duration("delay", 0, "wait this long before each answer")
	status := fs.String("status", loadgen.StatusValid, "payload status to answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("no arguments expected")
	}
	if err := loopbackAddr(*listen); err != nil {
		return usageErr("--listen: %v", err)
	}
	secret, err := loadSecret(*secretPath)
	if err != nil {
		return err
	}
	el, err := loadgen.StartFakeEL(*listen, loadgen.FakeELConfig{Secret: secret, Hang: *hang, Delay: *delay, Status: *status})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fake EL on %s (hang=%v)\n", el.URL(), *hang)
	<-ctx.Done()
	err = el.Close()
	fmt.Fprintf(stdout, "%+v\n", el.Stats())
	return err
}

// loopbackAddr accepts only host:port on a loopback address: the tool never listens beyond
// the machine.
func loopbackAddr(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", host)
	}
	return nil
}
