#!/usr/bin/env bash
# abstamp.sh REV [COUNT] measures the working tree's stamp.Rewrite against the
# one at git revision REV in the same process: REV's package is copied beside
# the tree's under another name, and one benchmark alternates the two on the
# bench/rwgen request (1.0 stamped, 2.0 stamped, 2.0 translated to 1.0),
# checks that their outputs are identical, and reports new/old in thread CPU
# time. The machine is shared and noisy; old and new share its state here.
# Identical code measures new/old 0.98-1.03 this way.
#
#   bench/abstamp.sh HEAD~1 5
#
# BenchmarkSplitNewOverOld does the same for a caller that writes for
# several tenants (LabelValues, then a Rewrite per tenant with Only);
# BENCH=SplitNewOverOld runs only that one.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:?usage: bench/abstamp.sh REV [COUNT]}
count=${2:-5}
pkg=proxy/ingest/promrw/stamp
dir=$(mktemp -d "$root/_abstamp.XXXXXX") # "_": never part of ./... should it be left behind
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/old"
git -C "$root" ls-tree --name-only "$rev" "$pkg/" | grep '\.go$' | grep -v '_test\.go$' | while read -r f; do
	git -C "$root" show "$rev:$f" | sed 's/^package stamp$/package old/' >"$dir/old/$(basename "$f")"
done

cat >"$dir/ab_test.go" <<'GO'
package abstamp

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/tenantgate/tenantgate/bench/rwgen"
	"github.com/tenantgate/tenantgate/internal/cputime"
	"github.com/tenantgate/tenantgate/proxy/ingest/promrw/stamp"
	"github.com/tenantgate/tenantgate/ABDIR/old"
)

// abCase is one request and the versions it is rewritten from and to, in
// both packages' terms.
type abCase struct {
	name      string
	body      []byte
	in, out   stamp.Version
	oin, oout old.Version
}

func abCases(p *rwgen.Payload) []abCase {
	return []abCase{
		{"v1", p.V1, stamp.V1, stamp.V1, old.V1, old.V1},
		{"v2", p.V2, stamp.V2, stamp.V2, old.V2, old.V2},
		{"v2-to-v1", p.V2, stamp.V2, stamp.V1, old.V2, old.V1},
	}
}

// alternate runs oldOp and newOp in turns, swapping which goes first every
// iteration, checks that their last outputs are identical, and reports
// new/old in thread CPU time.
func alternate(b *testing.B, oldOp, newOp func() []byte) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var o1, o2 []byte
	var to, tn int64
	k := 0
	for b.Loop() {
		k++
		for j := range 2 {
			t0 := cputime.Thread()
			if (j+k)%2 == 0 {
				o1 = oldOp()
				to += cputime.Thread() - t0
			} else {
				o2 = newOp()
				tn += cputime.Thread() - t0
			}
		}
	}
	if !bytes.Equal(o1, o2) {
		b.Fatal("old and new outputs differ")
	}
	b.ReportMetric(float64(tn)/float64(to), "new/old")
	b.ReportMetric(float64(to)/float64(b.N), "old-cpu-ns/op")
	b.ReportMetric(float64(tn)/float64(b.N), "new-cpu-ns/op")
}

func BenchmarkNewOverOld(b *testing.B) {
	for _, c := range abCases(rwgen.Generate(1)) {
		b.Run(c.name, func(b *testing.B) {
			var o1, o2 []byte
			alternate(b, func() []byte {
				o1, _, _ = old.Rewrite(o1, c.body, c.oin, old.Options{LabelName: "tenant", Value: "acme", Output: c.oout})
				return o1
			}, func() []byte {
				o2, _, _ = stamp.Rewrite(o2, c.body, c.in, stamp.Options{LabelName: "tenant", Value: "acme", Output: c.out})
				return o2
			})
		})
	}
}

// BenchmarkSplitNewOverOld measures the path of a caller that writes for
// several tenants: LabelValues, then one Rewrite per value with Only.
func BenchmarkSplitNewOverOld(b *testing.B) {
	p := rwgen.New(rwgen.Config{Seed: 1, TenantLabel: "tenant", TenantValues: []string{"acme", "globex"}}).Next()
	for _, c := range abCases(p) {
		b.Run(c.name, func(b *testing.B) {
			var o1, o2, all1, all2 []byte
			alternate(b, func() []byte {
				vs, err := old.LabelValues(c.body, c.oin, "tenant")
				if err != nil {
					b.Fatal(err)
				}
				all1 = all1[:0]
				for _, v := range vs {
					o1, _, _ = old.Rewrite(o1, c.body, c.oin, old.Options{LabelName: "tenant", Value: v, Only: &v, Output: c.oout})
					all1 = append(all1, o1...)
				}
				return all1
			}, func() []byte {
				vs, err := stamp.LabelValues(c.body, c.in, "tenant")
				if err != nil {
					b.Fatal(err)
				}
				all2 = all2[:0]
				for _, v := range vs {
					o2, _, _ = stamp.Rewrite(o2, c.body, c.in, stamp.Options{LabelName: "tenant", Value: v, Only: &v, Output: c.out})
					all2 = append(all2, o2...)
				}
				return all2
			})
		})
	}
}
GO
sed -i "s|ABDIR|$(basename "$dir")|" "$dir/ab_test.go"
cd "$root" && go test -run '^$' -bench "${BENCH:-NewOverOld}" -count "$count" "./$(basename "$dir")/"
