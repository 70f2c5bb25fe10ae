package provision_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenantgate/tenantgate/tenancy"
	"github.com/tenantgate/tenantgate/tenancy/provision"
)

// A program that is not tenantgate renders a tenant of the shared registry
// into its Kubernetes objects.
func ExampleRender() {
	tenant := tenancy.Config{
		ID:     "7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11",
		Name:   "ACME",
		Grants: []tenancy.GrantConfig{{Principals: []string{"group:corp/acme"}, Signals: []string{"*"}, Access: []string{"read"}}},
		Provision: &tenancy.ProvisionConfig{
			Owners:  tenancy.OwnersConfig{Admin: []string{"acme-admins"}, Dev: []string{"acme-devs"}},
			Storage: tenancy.StorageConfig{KMSKey: "arn:aws:kms:eu-west-1:111122223333:key/acme"},
		},
	}
	platform := provision.Platform{
		VaultAddress:  "https://vault.platform.svc:8200",
		GitOpsRepoURL: "https://git.example.com/platform/tenants.git",
		BackupBucket:  "tenant-backups",
	}
	objs, err := provision.Render(&tenant, platform, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range objs {
		fmt.Println(o.GetKind(), o.GetNamespace(), o.GetName())
	}
	// Output:
	// Namespace  tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
	// StorageClass  tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
	// Role tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantAdmin
	// Role tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantDev
	// Role tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantView
	// RoleBinding tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantAdmin
	// RoleBinding tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantDev
	// RoleBinding tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 TenantView
	// LimitRange tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 tenant-limits
	// ResourceQuota tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 tenant-quota
	// NetworkPolicy tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 default-deny
	// NetworkPolicy tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 allow-same-namespace
	// NetworkPolicy tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 allow-dns
	// NetworkPolicy tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 allow-from-gateway
	// SecretStore tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11 vault
	// AppProject argocd tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
	// Application argocd tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
	// BackupStorageLocation velero tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
	// Schedule velero tenant-7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11
}

// An operator of its own embeds the provisioner with its own client,
// logger, metrics registry and provenance sink, and applies tenants.
func ExampleNew() {
	rc, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		fmt.Println(err)
		return
	}
	sink, err := provision.NewFileSink("provisioning.prov.jsonl")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close()
	p, err := provision.New(provision.Options{
		Client:     client,
		Platform:   provision.Platform{VaultAddress: "https://vault:8200", GitOpsRepoURL: "https://git/tenants.git", BackupBucket: "backups"},
		Agent:      "my-operator",
		Sink:       sink,
		Logger:     slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var tenants []tenancy.Config // from the same registry the gateway enforces
	plan, err := p.Apply(context.Background(), tenants)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(plan)
}
