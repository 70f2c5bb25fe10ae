package filter

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// benchEvents are a Metadata-level event (~1 KB, the bulk of a real audit
// stream) and a RequestResponse one with a Secret to redact.
func benchEvent(b *testing.B, name string) []byte {
	b.Helper()
	raw, err := os.ReadFile("testdata/events/" + name + ".json")
	if err != nil {
		b.Fatal(err)
	}
	return bytes.TrimSpace(raw)
}

func benchmarkProcess(b *testing.B, name string) {
	raw := benchEvent(b, name)
	p, err := New(testConfig(b), testRegistry(b))
	if err != nil {
		b.Fatal(err)
	}
	var e Event
	var sc Scratch
	var out []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Scan(raw, &e); err != nil {
			b.Fatal(err)
		}
		if out, _, err = p.Process(&e, out[:0], &sc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeline is Scan plus Process with pseudonymization and every
// default rule and pattern.
func BenchmarkPipeline(b *testing.B) {
	b.Run("metadata", func(b *testing.B) { benchmarkProcess(b, "metadata_update") })
	b.Run("request_response_secret", func(b *testing.B) { benchmarkProcess(b, "secret_create") })
	b.Run("configmap_patterns", func(b *testing.B) { benchmarkProcess(b, "configmap_patterns") })
}

// BenchmarkNaiveBaseline is the design the pipeline avoids: decoding each
// event into map[string]any and encoding it again with encoding/json, with
// no filtering at all.
func BenchmarkNaiveBaseline(b *testing.B) {
	for _, name := range []string{"metadata_update", "secret_create"} {
		b.Run(name, func(b *testing.B) {
			raw := benchEvent(b, name)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
