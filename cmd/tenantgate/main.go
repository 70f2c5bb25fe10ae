// Command tenantgate is the multi-tenant observability gateway.
//
//	tenantgate serve [--config FILE]        run the gateway (the embedded default without --config)
//	tenantgate check-config --config FILE   validate a configuration, print every problem
//	tenantgate default-config               print the embedded default configuration
//	tenantgate tenant render|plan|apply|delete|expire|reconcile [flags]
//	                                        provision the tenants' Kubernetes objects
//	tenantgate version                      print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: tenantgate <command> [flags]

commands:
  serve [--config FILE]        run the gateway (the embedded default configuration without --config)
  check-config --config FILE   validate a configuration file and print every problem
  default-config               print the embedded default configuration
  tenant render|plan|apply|delete|expire|reconcile
                               provision the tenants' Kubernetes objects (tenantgate tenant for details)
  version                      print the version
`

// run dispatches a subcommand and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "check-config":
		err = checkConfig(args[1:], stdout, stderr)
	case "default-config":
		if err = noArgs(args); err == nil {
			err = defaultConfig(stdout)
		}
	case "tenant":
		err = tenantCmd(args[1:], stdout, stderr)
	case "version":
		if err = noArgs(args); err == nil {
			_, err = fmt.Fprintln(stdout, "tenantgate", version())
		}
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "tenantgate:", err)
		return 2
	}
	fmt.Fprintln(stderr, "tenantgate:", err)
	return 1
}

var errUsage = errors.New("usage")

// noArgs refuses arguments after a command that takes none.
func noArgs(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, args[0], args[1])
	}
	return nil
}

// parseFlags parses a subcommand's flags: a bad flag or a stray argument is
// a usage error (exit 2), as a missing command is.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q (flags go before it, as --config FILE)", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
