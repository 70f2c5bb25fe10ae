package provision

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Platform holds the settings that every tenant shares: where the platform's
// own components run and the defaults a tenant may override. It is the
// provisioning section of tenantgate's configuration file.
type Platform struct {
	// GatewayNamespace is the system namespace of the tenant gateway, the
	// only one from which a tenant's pods accept traffic. Defaults to
	// tenantgate-system.
	GatewayNamespace string `yaml:"gateway_namespace"`
	// DNSNamespace and DNSPodLabels select the cluster DNS pods that every
	// tenant may reach on port 53. Default kube-system and k8s-app=kube-dns.
	DNSNamespace string            `yaml:"dns_namespace"`
	DNSPodLabels map[string]string `yaml:"dns_pod_labels"`
	// TierLabel is the node label and taint key of the node pools:
	// tenant-tier (default), so a standard tenant's pods get the node
	// selector tenant-tier=standard and tolerate the taint
	// tenant-tier=standard:NoSchedule.
	TierLabel string `yaml:"tier_label"`
	// VaultAddress is the Vault server of every tenant's SecretStore unless
	// the tenant names its own.
	VaultAddress string `yaml:"vault_address"`
	// ArgoCDNamespace is where Argo CD watches Applications. Defaults to
	// argocd.
	ArgoCDNamespace string `yaml:"argocd_namespace"`
	// GitOpsRepoURL is the repository of every tenant's manifests unless the
	// tenant names its own.
	GitOpsRepoURL string `yaml:"gitops_repo_url"`
	// ClusterURL is the Argo CD destination. Defaults to
	// https://kubernetes.default.svc.
	ClusterURL string `yaml:"cluster_url"`
	// VeleroNamespace is where Velero runs. Defaults to velero.
	VeleroNamespace string `yaml:"velero_namespace"`
	// BackupProvider is the Velero object store plugin. Defaults to aws.
	BackupProvider string `yaml:"backup_provider"`
	// BackupBucket is the bucket of every tenant's backups, each under its
	// own prefix.
	BackupBucket string `yaml:"backup_bucket"`
	// BackupConfig is the provider configuration of the backup storage
	// locations (region, s3Url, ...).
	BackupConfig map[string]string `yaml:"backup_config"`
}

// SetDefaults fills the unset fields of p.
func (p *Platform) SetDefaults() {
	for _, d := range []struct {
		f *string
		v string
	}{
		{&p.GatewayNamespace, "tenantgate-system"}, {&p.DNSNamespace, "kube-system"}, {&p.TierLabel, "tenant-tier"},
		{&p.ArgoCDNamespace, "argocd"}, {&p.ClusterURL, "https://kubernetes.default.svc"},
		{&p.VeleroNamespace, "velero"}, {&p.BackupProvider, "aws"},
	} {
		if *d.f == "" {
			*d.f = d.v
		}
	}
	if p.DNSPodLabels == nil {
		p.DNSPodLabels = map[string]string{"k8s-app": "kube-dns"}
	}
}

// Validate reports every problem of p, which must have its defaults set.
func (p *Platform) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"gateway_namespace", p.GatewayNamespace}, {"dns_namespace", p.DNSNamespace},
		{"argocd_namespace", p.ArgoCDNamespace}, {"velero_namespace", p.VeleroNamespace},
	} {
		if !dnsLabel(f.v) {
			errs = append(errs, fmt.Errorf("provisioning.%s %q: want a namespace name (lowercase letters, digits and '-', at most 63)", f.name, f.v))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"vault_address", p.VaultAddress}, {"gitops_repo_url", p.GitOpsRepoURL}, {"cluster_url", p.ClusterURL},
	} {
		if f.v != "" && !strings.Contains(f.v, "://") && !strings.HasPrefix(f.v, "git@") {
			errs = append(errs, fmt.Errorf("provisioning.%s %q: want an absolute URL", f.name, f.v))
		}
	}
	if p.TierLabel == "" || strings.ContainsAny(p.TierLabel, " =,") {
		errs = append(errs, fmt.Errorf("provisioning.tier_label %q: want a label key", p.TierLabel))
	}
	return errors.Join(errs...)
}

// Check reports what the provisioned tenant c needs from the platform that
// neither it nor p provides (a Vault address, a GitOps repository, a backup
// bucket). p must have its defaults set. Gateway-only tenants pass.
func Check(c *tenancy.Config, p *Platform) error {
	t, ok := c.Provisioning()
	if !ok {
		return nil
	}
	return p.check(c.ID, &t)
}

// check reports what a tenant needs from the platform that neither it nor
// the platform provides.
func (p *Platform) check(id string, t *tenancy.ProvisionConfig) error {
	var errs []error
	if t.Vault.Address == "" && p.VaultAddress == "" {
		errs = append(errs, fmt.Errorf("tenant %q: no Vault address: set provision.vault.address or provisioning.vault_address", id))
	}
	if t.GitOps.RepoURL == "" && p.GitOpsRepoURL == "" {
		errs = append(errs, fmt.Errorf("tenant %q: no GitOps repository: set provision.gitops.repo_url or provisioning.gitops_repo_url", id))
	}
	if !t.Backup.Disabled && p.BackupBucket == "" {
		errs = append(errs, fmt.Errorf("tenant %q: no backup bucket: set provisioning.backup_bucket or provision.backup.disabled", id))
	}
	return errors.Join(errs...)
}

func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
