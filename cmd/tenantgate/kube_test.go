package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/tenancy/kube"
)

// TestMapStoreErr: the admin API's errors keep the store's message, once.
func TestMapStoreErr(t *testing.T) {
	err := mapStoreErr(fmt.Errorf("%w: nope", kube.ErrNotFound))
	if !errors.Is(err, admin.ErrNotFound) || !errors.Is(err, kube.ErrNotFound) || err.Error() != "tenant not found: nope" {
		t.Errorf("not found: %q", err)
	}
	err = mapStoreErr(fmt.Errorf("%w: x", kube.ErrExists))
	if !errors.Is(err, admin.ErrExists) || err.Error() != "tenant already exists: x" {
		t.Errorf("exists: %q", err)
	}
}
