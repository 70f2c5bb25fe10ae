package provision

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The custom resource kinds a tenant renders to, as their published CRDs
// define them: External Secrets v0.16 (external-secrets.io/v1), Argo CD v3
// (argoproj.io/v1alpha1) and Velero v1.18 (velero.io/v1).
const (
	apiExternalSecrets = "external-secrets.io/v1"
	apiArgoCD          = "argoproj.io/v1alpha1"
	apiVelero          = "velero.io/v1"
)

func object(apiVersion, kind, name, namespace string, spec map[string]any) *unstructured.Unstructured {
	meta := map[string]any{"name": name}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind, "metadata": meta, "spec": spec,
	}}
}

// customObjects returns the tenant's objects whose kinds come from CRDs.
func (r *renderer) customObjects() []*unstructured.Unstructured {
	out := []*unstructured.Unstructured{r.secretStore()}
	out = append(out, r.argoCD()...)
	if !r.p.Backup.Disabled {
		out = append(out, r.velero()...)
	}
	return out
}

// secretStore is the External Secrets SecretStore on the tenant's Vault
// namespace, authenticated with a service account token of the tenant's
// own namespace, so a tenant can only read what its Vault role allows.
func (r *renderer) secretStore() *unstructured.Unstructured {
	v := r.p.Vault
	addr := v.Address
	if addr == "" {
		addr = r.pl.VaultAddress
	}
	return object(apiExternalSecrets, "SecretStore", "vault", r.ns, map[string]any{
		"provider": map[string]any{"vault": map[string]any{
			"server":    addr,
			"namespace": v.Namespace,
			"path":      v.Path,
			"version":   "v2",
			"auth": map[string]any{"kubernetes": map[string]any{
				"mountPath":         v.AuthMount,
				"role":              v.Role,
				"serviceAccountRef": map[string]any{"name": v.ServiceAccount},
			}},
		}},
	})
}

// argoCD returns an AppProject that confines the tenant's sync to its
// namespace and repository (Argo CD applies with its own, powerful service
// account, so the project is the boundary) and the Application itself.
func (r *renderer) argoCD() []*unstructured.Unstructured {
	g := r.p.GitOps
	repo := g.RepoURL
	if repo == "" {
		repo = r.pl.GitOpsRepoURL
	}
	name := Namespace(r.id)
	dest := map[string]any{"server": r.pl.ClusterURL, "namespace": r.ns}
	// A whitelist, not a blacklist: without one Argo CD syncs every
	// namespaced kind not listed, with its own account, including kinds the
	// tenant's roles may not write (a CNI's own network policies, which
	// would open default-deny; EndpointSlices). The tenant's repository may
	// hold what its roles may write, and Secrets and ServiceAccounts.
	allowed := []any{
		map[string]any{"group": "", "kind": "Secret"},
		map[string]any{"group": "", "kind": "ServiceAccount"},
	}
	for _, g := range workloadKinds {
		for _, k := range g.kinds {
			allowed = append(allowed, map[string]any{"group": g.group, "kind": k[1]})
		}
	}
	project := object(apiArgoCD, "AppProject", name, r.pl.ArgoCDNamespace, map[string]any{
		"description":                "Tenant " + r.name + ": only its repository, only its namespace, only workload kinds.",
		"sourceRepos":                []any{repo},
		"destinations":               []any{dest},
		"namespaceResourceWhitelist": allowed,
	})
	app := object(apiArgoCD, "Application", name, r.pl.ArgoCDNamespace, map[string]any{
		"project":     name,
		"source":      map[string]any{"repoURL": repo, "path": g.Path, "targetRevision": g.Revision},
		"destination": dest,
		"syncPolicy": map[string]any{
			"automated":   map[string]any{"prune": true, "selfHeal": true},
			"syncOptions": []any{"CreateNamespace=false"},
		},
	})
	return []*unstructured.Unstructured{project, app}
}

// velero returns a backup storage location under the tenant's own prefix of
// the platform's bucket and a schedule that backs up the tenant's namespace
// there.
func (r *renderer) velero() []*unstructured.Unstructured {
	b := r.p.Backup
	name := Namespace(r.id)
	bsl := map[string]any{
		"provider":      r.pl.BackupProvider,
		"objectStorage": map[string]any{"bucket": r.pl.BackupBucket, "prefix": b.Prefix},
	}
	if len(r.pl.BackupConfig) > 0 {
		cfg := map[string]any{}
		for k, v := range r.pl.BackupConfig {
			cfg[k] = v
		}
		bsl["config"] = cfg
	}
	return []*unstructured.Unstructured{
		object(apiVelero, "BackupStorageLocation", name, r.pl.VeleroNamespace, bsl),
		object(apiVelero, "Schedule", name, r.pl.VeleroNamespace, map[string]any{
			"schedule": b.Schedule,
			"template": map[string]any{
				"includedNamespaces": []any{r.ns},
				"storageLocation":    name,
				"ttl":                b.TTL.String(),
			},
		}),
	}
}
