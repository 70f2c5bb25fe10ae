package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/proxy"
	"github.com/tenantgate/tenantgate/proxy/admin"
	"github.com/tenantgate/tenantgate/tenancy"
	"github.com/tenantgate/tenantgate/tenancy/kube"
	"github.com/tenantgate/tenantgate/tenancy/provision"
)

// tenantWatch returns the task that feeds the cluster's Tenant objects to
// the gateway and the admin API's store, when kubernetes.watch_tenants is
// set; nil and nil otherwise.
func tenantWatch(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (func(context.Context, *proxy.Gateway) error, admin.Store, error) {
	if !cfg.Kubernetes.WatchTenants {
		return nil, nil, nil
	}
	client, err := cfg.Kubernetes.Dynamic()
	if err != nil {
		return nil, nil, err
	}
	src, err := kube.NewSource(kube.SourceOptions{Client: client, Logger: logger.With("component", "tenant-source"), Registerer: reg})
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, gw *proxy.Gateway) error {
		return src.Run(ctx, func(tenants []tenancy.Config) {
			if err := gw.SetDynamicTenants(tenants); err != nil {
				logger.Error("applying the cluster's tenants; the previous ones keep being enforced", "err", err)
				return
			}
			logger.Info("tenants from the cluster applied", "tenants", len(tenants))
		})
	}
	return run, adminStore{kube.NewStore(client), &cfg.Provisioning}, nil
}

// adminStore maps the errors of kube.Store to those of admin.Store, and
// refuses a tenant that the platform settings cannot render: its object
// would stop at Invalid, never provisioned.
type adminStore struct {
	s        *kube.Store
	platform *provision.Platform
}

func (a adminStore) List(ctx context.Context) ([]tenancy.Config, error) { return a.s.List(ctx) }

func (a adminStore) Get(ctx context.Context, id string) (tenancy.Config, error) {
	c, err := a.s.Get(ctx, id)
	return c, mapStoreErr(err)
}

func (a adminStore) Create(ctx context.Context, c tenancy.Config) error {
	if err := provision.Check(&c, a.platform); err != nil {
		return mapped{err, admin.ErrInvalid}
	}
	return mapStoreErr(a.s.Create(ctx, c))
}

func (a adminStore) Delete(ctx context.Context, id string) error {
	return mapStoreErr(a.s.Delete(ctx, id))
}

func mapStoreErr(err error) error {
	switch {
	case errors.Is(err, kube.ErrNotFound):
		return mapped{err, admin.ErrNotFound}
	case errors.Is(err, kube.ErrExists):
		return mapped{err, admin.ErrExists}
	}
	return err
}

// mapped is err, which also counts as kind, with err's message.
type mapped struct{ err, kind error }

func (m mapped) Error() string   { return m.err.Error() }
func (m mapped) Unwrap() []error { return []error{m.err, m.kind} }
