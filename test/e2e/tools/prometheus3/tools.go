//go:build tools

// Package tools records the Prometheus 3 binary that the end-to-end tests
// build with ../build.sh (go build -ldflags='-s -w').
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
