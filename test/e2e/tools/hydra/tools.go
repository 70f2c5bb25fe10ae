//go:build tools

// Package tools records the Hydra binary that the end-to-end tests build with
// ../build.sh (go build -tags sqlite,sqlite_omit_load_extension).
package tools

import _ "github.com/ory/hydra/v2"
