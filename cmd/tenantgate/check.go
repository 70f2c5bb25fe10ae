package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tenantgate/tenantgate/config"
)

// checkConfig validates a file and prints every problem, one per line.
func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	c, err := config.Load(*path)
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		fmt.Fprintf(stdout, "%s: %d problem(s)\n", *path, len(problems))
		for _, p := range problems {
			fmt.Fprintln(stdout, "  -", p)
		}
		return errors.New("configuration is invalid")
	}
	fmt.Fprintf(stdout, "%s: valid (%d tenants, %d upstreams)\n", *path, len(c.Tenants), len(c.Gateway.Upstreams))
	for _, w := range c.Warnings() {
		fmt.Fprintln(stdout, "  warning:", w)
	}
	return nil
}

func defaultConfig(stdout io.Writer) error {
	_, err := stdout.Write(config.Default)
	return err
}
