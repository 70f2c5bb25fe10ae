//go:build tools

// Package tools records the Thanos binary that the end-to-end tests build
// with ../build.sh (go build -tags netgo,slicelabels).
package tools

import _ "github.com/thanos-io/thanos/cmd/thanos"
