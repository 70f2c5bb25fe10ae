package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReloaderAppliesValidFilesAndRefusesInvalidOnes(t *testing.T) {
	dir := t.TempDir()
	path, good := writeMinimal(t, dir)
	var mu sync.Mutex
	var applied []*Config
	apply := func(_ context.Context, c *Config) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, c)
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(applied) }
	reg := prometheus.NewRegistry()
	r := NewReloader(path, good, apply, nopLogger(), reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	hup := make(chan os.Signal, 1)
	go func() { done <- r.Run(ctx, hup) }()
	time.Sleep(100 * time.Millisecond) // let the watcher start

	// An unchanged file is not applied again on a forced-off reload.
	if err := r.Reload(ctx, "test", false); err != nil || count() != 0 {
		t.Fatalf("reload of an unchanged file: err %v, applied %d", err, count())
	}

	// Changing the file is seen and applied.
	changed := strings.Replace(string(good), "id: t1", "id: t2", 1)
	writeAtomically(t, path, changed)
	waitFor(t, func() bool { return count() == 1 })
	if got := applied[0].Tenants[0].ID; got != "t2" {
		t.Fatalf("applied tenant %q, want t2", got)
	}

	// An invalid file is refused, counted, and nothing is applied.
	writeAtomically(t, path, changed+"\nbogus_key: 1\n")
	waitFor(t, func() bool {
		return testutil.ToFloat64(r.reloads.WithLabelValues("file_change", "invalid")) == 1
	})
	if count() != 1 || testutil.ToFloat64(r.success) != 0 {
		t.Fatalf("invalid file: applied %d, last_reload_successful %v", count(), testutil.ToFloat64(r.success))
	}
	err := r.Reload(ctx, "http", true)
	if err == nil || !strings.Contains(err.Error(), "field bogus_key not found") {
		t.Fatalf("forced reload of an invalid file: %v", err)
	}

	// Reverting it to what runs clears the failure: nothing to apply,
	// and last_reload_successful is 1 again.
	writeAtomically(t, path, changed)
	waitFor(t, func() bool { return testutil.ToFloat64(r.success) == 1 })
	if count() != 1 {
		t.Fatalf("the reverted file was applied again: %d", count())
	}

	// Fixing it recovers.
	writeAtomically(t, path, strings.Replace(changed, "id: t2", "id: t3", 1))
	waitFor(t, func() bool { return count() == 2 })
	if testutil.ToFloat64(r.success) != 1 {
		t.Fatal("last_reload_successful should be 1 after a good reload")
	}

	// SIGHUP reloads, even an unchanged file.
	hup <- syscall.SIGHUP
	waitFor(t, func() bool { return count() == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// writeMinimal writes testdata/minimal.good.yaml as dir/tenantgate.yaml and
// returns its path and content.
func writeMinimal(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, "tenantgate.yaml")
	good, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, good
}

// writeAtomically replaces path the way editors and Kubernetes do: write a
// new file and rename it over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloaderWatchesNamedFiles: a file the configuration names (a server
// certificate), replaced without the configuration changing, reloads it,
// whether it is rewritten in place or swapped in through a Kubernetes
// volume's ..data symlink.
func TestReloaderWatchesNamedFiles(t *testing.T) {
	dir, certs := t.TempDir(), t.TempDir()
	path, good := writeMinimal(t, dir)
	// certs/tls.crt -> ..data/tls.crt, ..data -> ..v1, as the kubelet lays
	// out a Secret volume.
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.MkdirAll(filepath.Join(certs, v), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certs, v, "tls.crt"), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..v1", filepath.Join(certs, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "tls.crt"), filepath.Join(certs, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(plain, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	applied := 0
	apply := func(context.Context, *Config) error { mu.Lock(); defer mu.Unlock(); applied++; return nil }
	count := func() int { mu.Lock(); defer mu.Unlock(); return applied }
	r := NewReloader(path, good, apply, nopLogger(), prometheus.NewRegistry())
	r.AlsoWatch(func() []string { return []string{filepath.Join(certs, "tls.crt"), plain} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, nil) }()
	time.Sleep(100 * time.Millisecond) // let the watcher start

	// The kubelet's swap: a new ..data symlink renamed over the old one.
	if err := os.Symlink("..v2", filepath.Join(certs, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(certs, "..data_tmp"), filepath.Join(certs, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return count() == 1 })
	if got := testutil.ToFloat64(r.reloads.WithLabelValues("watched_file", "success")); got != 1 {
		t.Fatalf("watched_file reloads = %v", got)
	}

	writeAtomically(t, plain, "v2")
	waitFor(t, func() bool { return count() == 2 })

	// Another file in a watched directory changes nothing.
	if err := os.WriteFile(filepath.Join(certs, "unrelated"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if count() != 2 {
		t.Fatalf("an unrelated file reloaded: %d", count())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestReloaderFollowsALinkedFile: --config names a symbolic link to a file
// in another directory (a file kept under configuration management, say);
// editing the target in place reloads it.
func TestReloaderFollowsALinkedFile(t *testing.T) {
	target, good := writeMinimal(t, t.TempDir())
	path := filepath.Join(t.TempDir(), "tenantgate.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ids []string
	apply := func(_ context.Context, c *Config) error {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, c.Tenants[0].ID)
		return nil
	}
	r := NewReloader(path, good, apply, nopLogger(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx, make(chan os.Signal)) }()
	time.Sleep(100 * time.Millisecond) // let the watcher start

	if err := os.WriteFile(target, []byte(strings.Replace(string(good), "id: t1", "id: t3", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(ids) == 1 && ids[0] == "t3" })
}
