package tenancy

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"
)

// Tier is a tenant's isolation tier. It picks the node pool the tenant's pods
// run on and how strict their Pod Security level is.
type Tier string

// The tiers.
const (
	// Standard tenants run on the shared node pool under the baseline Pod
	// Security Standard.
	Standard Tier = "standard"
	// Sensitive tenants run on the hardened (gVisor/Kata) node pool under the
	// restricted Pod Security Standard.
	Sensitive Tier = "sensitive"
)

// DefaultRetention is how long a deleted tenant's objects are kept before
// they are removed.
const DefaultRetention = 30 * 24 * time.Hour

// BreakGlassTTL is how long a break-glass (pentest) grant lasts.
const BreakGlassTTL = 24 * time.Hour

// ProvisionConfig is what a tenant needs in a Kubernetes cluster: its
// namespace, roles, quotas, network and storage isolation, secrets, GitOps
// and backups. A tenant without it is enforced by the gateway only.
// Platform-wide settings (the gateway namespace, the Vault address, the Argo
// CD and Velero namespaces) belong to the provisioner, not to the tenant.
type ProvisionConfig struct {
	// Tier is standard (default) or sensitive.
	Tier Tier `yaml:"tier"`
	// Owners name the Kubernetes groups bound to the tenant's roles.
	Owners OwnersConfig `yaml:"owners"`
	// Quota bounds what the namespace may consume (a ResourceQuota).
	Quota QuotaConfig `yaml:"quota"`
	// Limits are the per-container defaults and maximums (a LimitRange).
	Limits LimitRangeConfig `yaml:"limits"`
	// Egress lists the destinations outside the cluster that the tenant's
	// pods may reach; everything else is denied, DNS excepted.
	Egress []EgressConfig `yaml:"egress"`
	// Storage configures the tenant's encrypted StorageClass.
	Storage StorageConfig `yaml:"storage"`
	// Vault configures the External Secrets SecretStore of the tenant.
	Vault VaultConfig `yaml:"vault"`
	// GitOps configures the Argo CD Application that syncs the tenant's
	// manifests into its namespace.
	GitOps GitOpsConfig `yaml:"gitops"`
	// Backup configures the tenant's Velero schedule.
	Backup BackupConfig `yaml:"backup"`
	// Retention is how long a deleted tenant's objects (and so its data)
	// are kept before they are removed. Defaults to 720h (30 days).
	Retention *time.Duration `yaml:"retention"`
	// BreakGlass, when set, grants the pentest role tenant-pentest-<id> to
	// its groups for 24 hours from its start.
	BreakGlass *BreakGlassConfig `yaml:"break_glass"`
}

// OwnersConfig names the groups (as the Kubernetes API server sees them)
// bound to each of the tenant's roles.
type OwnersConfig struct {
	// Admin groups get TenantAdmin. At least one is required.
	Admin []string `yaml:"admin"`
	// Dev groups get TenantDev.
	Dev []string `yaml:"dev"`
	// View groups get TenantView.
	View []string `yaml:"view"`
}

// QuotaConfig is the tenant's ResourceQuota. Quantities use the Kubernetes
// notation (500m, 16Gi); an empty field takes its default.
type QuotaConfig struct {
	RequestsCPU            string `yaml:"requests_cpu"`             // default 8
	RequestsMemory         string `yaml:"requests_memory"`          // default 16Gi
	LimitsCPU              string `yaml:"limits_cpu"`               // default 16
	LimitsMemory           string `yaml:"limits_memory"`            // default 32Gi
	RequestsStorage        string `yaml:"requests_storage"`         // default 100Gi
	Pods                   string `yaml:"pods"`                     // default 100
	PersistentVolumeClaims string `yaml:"persistent_volume_claims"` // default 20
	// ServicesLoadBalancers defaults to 0: tenants are reached through the
	// platform gateway, never through a load balancer of their own.
	ServicesLoadBalancers string `yaml:"services_load_balancers"`
	ServicesNodePorts     string `yaml:"services_node_ports"` // default 0, for the same reason
}

// LimitRangeConfig is the tenant's LimitRange for containers.
type LimitRangeConfig struct {
	DefaultCPU           string `yaml:"default_cpu"`            // default 500m
	DefaultMemory        string `yaml:"default_memory"`         // default 512Mi
	DefaultRequestCPU    string `yaml:"default_request_cpu"`    // default 100m
	DefaultRequestMemory string `yaml:"default_request_memory"` // default 128Mi
	MaxCPU               string `yaml:"max_cpu"`                // default 4
	MaxMemory            string `yaml:"max_memory"`             // default 8Gi
}

// EgressConfig allows traffic to one network outside the cluster.
type EgressConfig struct {
	// CIDR is the destination network, such as 52.94.0.0/16.
	CIDR string `yaml:"cidr"`
	// Except lists sub-networks of CIDR that stay denied.
	Except []string `yaml:"except"`
	// Ports restricts the allowed ports; empty allows every port.
	Ports []PortConfig `yaml:"ports"`
}

// PortConfig is a port and protocol.
type PortConfig struct {
	Port     int    `yaml:"port"`
	Protocol string `yaml:"protocol"` // TCP (default), UDP or SCTP
}

// StorageConfig selects the CSI driver and the tenant's encryption key.
type StorageConfig struct {
	// CSIDriver is one of the drivers whose encryption parameter tenantgate
	// knows: ebs.csi.aws.com (default), pd.csi.storage.gke.io,
	// disk.csi.azure.com, csi.vsphere.vmware.com.
	CSIDriver string `yaml:"csi_driver"`
	// KMSKey is the tenant's key: a KMS key ARN or ID (AWS), a Cloud KMS key
	// resource name (GCP), a disk encryption set ID (Azure) or an encrypting
	// storage policy name (vSphere). Required.
	KMSKey string `yaml:"kms_key"`
	// Parameters are extra driver parameters (type: gp3, for example). They
	// cannot override the encryption parameters.
	Parameters map[string]string `yaml:"parameters"`
	// ReclaimPolicy is Delete (default) or Retain.
	ReclaimPolicy string `yaml:"reclaim_policy"`
}

// VaultConfig is the tenant's Vault namespace, as External Secrets reaches it.
type VaultConfig struct {
	// Address overrides the platform's Vault address for this tenant.
	Address string `yaml:"address"`
	// Namespace is the tenant's Vault namespace. Defaults to the tenant ID.
	Namespace string `yaml:"namespace"`
	// Path is the KV v2 mount. Defaults to secret.
	Path string `yaml:"path"`
	// AuthMount is the Vault Kubernetes auth mount. Defaults to kubernetes.
	AuthMount string `yaml:"auth_mount"`
	// Role is the Vault role of the tenant. Defaults to tenant-<id>.
	Role string `yaml:"role"`
	// ServiceAccount is the service account of the tenant's namespace whose
	// token External Secrets presents to Vault. Defaults to default.
	ServiceAccount string `yaml:"service_account"`
}

// GitOpsConfig is where Argo CD finds the tenant's manifests.
type GitOpsConfig struct {
	// RepoURL overrides the platform's GitOps repository for this tenant.
	RepoURL string `yaml:"repo_url"`
	// Path is the directory of the tenant's manifests. Defaults to
	// tenants/<id>.
	Path string `yaml:"path"`
	// Revision is the branch, tag or commit. Defaults to HEAD.
	Revision string `yaml:"revision"`
}

// BackupConfig is the tenant's Velero schedule.
type BackupConfig struct {
	// Disabled turns the tenant's backups off.
	Disabled bool `yaml:"disabled"`
	// Schedule is a cron expression. Defaults to "0 2 * * *".
	Schedule string `yaml:"schedule"`
	// TTL is how long each backup is kept. Defaults to 720h.
	TTL time.Duration `yaml:"ttl"`
	// Prefix is the tenant's prefix in the backup bucket. Defaults to
	// tenants/<id>.
	Prefix string `yaml:"prefix"`
}

// BreakGlassConfig is a time-boxed pentest grant.
type BreakGlassConfig struct {
	// Groups get the tenant-pentest-<id> role.
	Groups []string `yaml:"groups"`
	// StartsAt is when the grant starts; it ends BreakGlassTTL later.
	StartsAt time.Time `yaml:"starts_at"`
}

// ExpiresAt returns when the grant ends.
func (b *BreakGlassConfig) ExpiresAt() time.Time { return b.StartsAt.Add(BreakGlassTTL) }

// SetDefaults fills the unset fields of p with their documented defaults.
// id is the tenant's ID, which some defaults are derived from.
func (p *ProvisionConfig) SetDefaults(id string) {
	if p.Tier == "" {
		p.Tier = Standard
	}
	q := &p.Quota
	for _, d := range []struct {
		f *string
		v string
	}{
		{&q.RequestsCPU, "8"}, {&q.RequestsMemory, "16Gi"}, {&q.LimitsCPU, "16"}, {&q.LimitsMemory, "32Gi"},
		{&q.RequestsStorage, "100Gi"}, {&q.Pods, "100"}, {&q.PersistentVolumeClaims, "20"},
		{&q.ServicesLoadBalancers, "0"}, {&q.ServicesNodePorts, "0"},
		{&p.Limits.DefaultCPU, "500m"}, {&p.Limits.DefaultMemory, "512Mi"}, {&p.Limits.DefaultRequestCPU, "100m"},
		{&p.Limits.DefaultRequestMemory, "128Mi"}, {&p.Limits.MaxCPU, "4"}, {&p.Limits.MaxMemory, "8Gi"},
		{&p.Storage.CSIDriver, "ebs.csi.aws.com"}, {&p.Storage.ReclaimPolicy, "Delete"},
		{&p.Vault.Namespace, id}, {&p.Vault.Path, "secret"}, {&p.Vault.AuthMount, "kubernetes"},
		{&p.Vault.Role, "tenant-" + id}, {&p.Vault.ServiceAccount, "default"},
		{&p.GitOps.Path, "tenants/" + id}, {&p.GitOps.Revision, "HEAD"},
		{&p.Backup.Schedule, "0 2 * * *"}, {&p.Backup.Prefix, "tenants/" + id},
	} {
		if *d.f == "" {
			*d.f = d.v
		}
	}
	if p.Backup.TTL == 0 {
		p.Backup.TTL = 720 * time.Hour
	}
	if p.Retention == nil {
		r := DefaultRetention
		p.Retention = &r
	}
}

// csiKeyParameter maps every CSI driver tenantgate knows to the StorageClass
// parameter that carries the tenant's key.
var csiKeyParameter = map[string]string{
	"ebs.csi.aws.com":        "kmsKeyId",
	"pd.csi.storage.gke.io":  "disk-encryption-kms-key",
	"disk.csi.azure.com":     "diskEncryptionSetID",
	"csi.vsphere.vmware.com": "storagepolicyname",
}

// CSIKeyParameter returns the StorageClass parameter of driver that names the
// encryption key, and whether tenantgate knows the driver.
func CSIKeyParameter(driver string) (string, bool) {
	p, ok := csiKeyParameter[driver]
	return p, ok
}

// Validate reports every problem of p, which must have its defaults set. id
// is the tenant's ID: a provisioned tenant needs a lowercase UUID, since its
// namespace is tenant-<id>.
func (p *ProvisionConfig) Validate(id string) error {
	var errs []error
	if err := ValidateUUID(id); err != nil {
		errs = append(errs, fmt.Errorf("a provisioned tenant needs a lowercase UUID as its ID, for its namespace tenant-<id>: %w", err))
	}
	switch p.Tier {
	case Standard, Sensitive:
	default:
		errs = append(errs, fmt.Errorf("tier %q: want standard or sensitive", p.Tier))
	}
	if len(p.Owners.Admin) == 0 {
		errs = append(errs, errors.New("owners.admin: at least one group must own the tenant"))
	}
	for _, r := range []struct {
		role   string
		groups []string
	}{{"admin", p.Owners.Admin}, {"dev", p.Owners.Dev}, {"view", p.Owners.View}} {
		for i, g := range r.groups {
			if err := validateGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("owners.%s[%d]: %w", r.role, i, err))
			}
		}
	}
	errs = append(errs, p.validateQuantities()...)
	for i, e := range p.Egress {
		errs = append(errs, Prefix(fmt.Sprintf("egress[%d]", i), e.validate()))
	}
	errs = append(errs, Prefix("storage", p.Storage.validate()))
	if err := validateURL(p.Vault.Address); err != nil {
		errs = append(errs, fmt.Errorf("vault.address: %w", err))
	}
	if err := validateURL(p.GitOps.RepoURL); err != nil {
		errs = append(errs, fmt.Errorf("gitops.repo_url: %w", err))
	}
	if strings.HasPrefix(p.GitOps.Path, "/") || strings.Contains("/"+p.GitOps.Path+"/", "/../") {
		errs = append(errs, fmt.Errorf("gitops.path %q: want a relative path inside the repository", p.GitOps.Path))
	}
	if len(strings.Fields(p.Backup.Schedule)) != 5 && !strings.HasPrefix(p.Backup.Schedule, "@") {
		errs = append(errs, fmt.Errorf("backup.schedule %q: want a cron expression of five fields (or @daily, @hourly, ...)", p.Backup.Schedule))
	}
	if p.Backup.TTL < time.Hour {
		errs = append(errs, fmt.Errorf("backup.ttl %s: want at least 1h", p.Backup.TTL))
	}
	if strings.HasPrefix(p.Backup.Prefix, "/") || strings.Contains("/"+p.Backup.Prefix+"/", "/../") {
		errs = append(errs, fmt.Errorf("backup.prefix %q: want a relative path inside the bucket", p.Backup.Prefix))
	}
	if r := *p.Retention; r < 0 || r > 10*365*24*time.Hour {
		errs = append(errs, fmt.Errorf("retention %s: want between 0s and 87600h (10 years)", r))
	}
	if b := p.BreakGlass; b != nil {
		if len(b.Groups) == 0 {
			errs = append(errs, errors.New("break_glass.groups: name at least one group"))
		}
		if b.StartsAt.IsZero() {
			errs = append(errs, errors.New("break_glass.starts_at: required (RFC 3339), the grant ends 24h later"))
		}
		for i, g := range b.Groups {
			if err := validateGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("break_glass.groups[%d]: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (p *ProvisionConfig) validateQuantities() []error {
	var errs []error
	q, l := &p.Quota, &p.Limits
	for _, f := range []struct{ name, v string }{
		{"quota.requests_cpu", q.RequestsCPU}, {"quota.requests_memory", q.RequestsMemory},
		{"quota.limits_cpu", q.LimitsCPU}, {"quota.limits_memory", q.LimitsMemory},
		{"quota.requests_storage", q.RequestsStorage}, {"quota.pods", q.Pods},
		{"quota.persistent_volume_claims", q.PersistentVolumeClaims},
		{"quota.services_load_balancers", q.ServicesLoadBalancers}, {"quota.services_node_ports", q.ServicesNodePorts},
		{"limits.default_cpu", l.DefaultCPU}, {"limits.default_memory", l.DefaultMemory},
		{"limits.default_request_cpu", l.DefaultRequestCPU}, {"limits.default_request_memory", l.DefaultRequestMemory},
		{"limits.max_cpu", l.MaxCPU}, {"limits.max_memory", l.MaxMemory},
	} {
		if err := ValidateQuantity(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errs
}

func (e EgressConfig) validate() error {
	var errs []error
	pfx, err := netip.ParsePrefix(e.CIDR)
	if err != nil {
		errs = append(errs, fmt.Errorf("cidr %q: want a network such as 203.0.113.0/24", e.CIDR))
	} else if pfx.Masked() != pfx {
		errs = append(errs, fmt.Errorf("cidr %q: host bits are set (the network is %s)", e.CIDR, pfx.Masked()))
	}
	if pfx.IsValid() && pfx.Addr().Is4In6() {
		errs = append(errs, fmt.Errorf("cidr %q: an IPv4-mapped IPv6 network; write the IPv4 network", e.CIDR))
	}
	for _, m := range metadataNets {
		if pfx.IsValid() && m.Contains(pfx.Addr()) && pfx.Bits() >= m.Bits() {
			errs = append(errs, fmt.Errorf("cidr %q: %s holds the cloud's metadata service, whose credentials are the node's; it is never allowed", e.CIDR, m))
		}
	}
	for _, x := range e.Except {
		sub, err := netip.ParsePrefix(x)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("except %q: want a network", x))
		case pfx.IsValid() && (!pfx.Contains(sub.Addr()) || sub.Bits() <= pfx.Bits()):
			errs = append(errs, fmt.Errorf("except %q: not a sub-network of %s", x, e.CIDR))
		}
	}
	for _, p := range e.Ports {
		if p.Port < 1 || p.Port > 65535 {
			errs = append(errs, fmt.Errorf("port %d: want 1-65535", p.Port))
		}
		switch p.Protocol {
		case "", "TCP", "UDP", "SCTP":
		default:
			errs = append(errs, fmt.Errorf("protocol %q: want TCP, UDP or SCTP", p.Protocol))
		}
	}
	return errors.Join(errs...)
}

// metadataNets are where clouds serve instance metadata and the node's
// credentials: the IPv4 and IPv6 link-local networks (169.254.169.254) and
// AWS's IPv6 address of it. The renderer leaves them out of every egress
// allowance that covers them.
var metadataNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// LinkLocalExcept returns what an egress rule's except list must add so that
// the rule does not open a metadata network (see metadataNets): each one
// that cidr covers and except does not already.
func LinkLocalExcept(cidr string, except []string) []string {
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil
	}
	var out []string
next:
	for _, m := range metadataNets {
		if pfx.Addr().Is4() != m.Addr().Is4() || pfx.Bits() > m.Bits() || !pfx.Contains(m.Addr()) {
			continue
		}
		for _, x := range except {
			if sub, err := netip.ParsePrefix(x); err == nil && sub.Bits() <= m.Bits() && sub.Contains(m.Addr()) {
				continue next
			}
		}
		out = append(out, m.String())
	}
	return out
}

// isolationKey is one setting that keeps a tenant's data from another's:
// what it is, and its value in normal form.
type isolationKey struct{ what, value string }

// isolationKeys are the settings that keep one tenant's data from another's
// and so must differ between tenants (after SetDefaults; one left unset
// clashes with nothing).
//
// Each is compared in a normal form, so that spellings the tools read alike
// count as one: a KMS key by its ARN or its ID, any case; a URL with or
// without its trailing slash (a repository with or without .git); a path
// with or without ./, // or a trailing slash (Argo CD and Velero clean them).
func (p *ProvisionConfig) isolationKeys() []isolationKey {
	vault, repo := strings.TrimSuffix(strings.ToLower(p.Vault.Address), "/"), strings.ToLower(p.GitOps.RepoURL)
	repo = strings.TrimSuffix(strings.TrimSuffix(repo, "/"), ".git")
	keys := []isolationKey{
		{"storage.kms_key", normalKey(p.Storage.KMSKey)},
		{"backup.prefix", cleanPath(p.Backup.Prefix)},
	}
	if p.Vault.Role != "" {
		keys = append(keys, isolationKey{"vault (address, namespace, role)", vault + " " + cleanPath(p.Vault.Namespace) + " " + p.Vault.Role})
	}
	if dir := cleanPath(p.GitOps.Path); dir != "" {
		keys = append(keys, isolationKey{"gitops (repo_url, path)", repo + " " + dir})
	}
	return slices.DeleteFunc(keys, func(k isolationKey) bool { return k.value == "" })
}

// normalKey reduces a KMS key reference to what names the key: an AWS ARN
// to key/<id> or alias/<name>, a bare key ID to key/<id>; lowercase.
func normalKey(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	for _, kind := range []string{"key/", "alias/"} {
		if i := strings.LastIndex(k, ":"+kind); i >= 0 && strings.HasPrefix(k, "arn:") {
			return k[i+1:]
		}
	}
	if k != "" && !strings.ContainsAny(k, ":/") {
		return "key/" + k
	}
	return k
}

// cleanPath is p as a tool that cleans paths reads it ("" for none).
func cleanPath(p string) string { return strings.Trim(path.Clean("/"+p), "/") }

// isolationClash returns an error naming the first isolation setting of c
// that taken (setting -> tenant ID) gives to another tenant, and else
// records c's settings in taken.
func isolationClash(c *Config, taken map[isolationKey]string) error {
	p, ok := c.Provisioning()
	if !ok {
		return nil
	}
	keys := p.isolationKeys()
	for _, k := range keys {
		if o, ok := taken[k]; ok && o != c.ID {
			return fmt.Errorf("tenant %q has the same %s as tenant %q: each tenant needs its own (its own key, secrets path, repository path and backups)", c.ID, k.what, o)
		}
	}
	for _, k := range keys {
		taken[k] = c.ID
	}
	return nil
}

func (s StorageConfig) validate() error {
	var errs []error
	param, ok := csiKeyParameter[s.CSIDriver]
	if !ok {
		errs = append(errs, fmt.Errorf("csi_driver %q: want one of ebs.csi.aws.com, pd.csi.storage.gke.io, disk.csi.azure.com, csi.vsphere.vmware.com", s.CSIDriver))
	}
	if s.KMSKey == "" {
		errs = append(errs, errors.New("kms_key: required, every tenant's volumes are encrypted with its own key"))
	}
	for k := range s.Parameters {
		if k == param || k == "encrypted" {
			errs = append(errs, fmt.Errorf("parameters.%s: set by tenantgate from kms_key and cannot be overridden", k))
		}
	}
	if s.ReclaimPolicy != "Delete" && s.ReclaimPolicy != "Retain" {
		errs = append(errs, fmt.Errorf("reclaim_policy %q: want Delete or Retain", s.ReclaimPolicy))
	}
	return errors.Join(errs...)
}

// ValidateUUID reports whether id is a UUID in its canonical lowercase form,
// such as 7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11.
func ValidateUUID(id string) error {
	if len(id) != 36 {
		return fmt.Errorf("%q is not a UUID (want 36 characters such as 7d4f0a2c-1b1e-4a4e-9a0e-0c8f1c3c9d11)", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%q is not a UUID: want '-' at byte %d", id, i)
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return fmt.Errorf("%q is not a lowercase UUID: %q at byte %d", id, c, i)
			}
		}
	}
	return nil
}

// ValidateQuantity reports whether s is a non-negative Kubernetes resource
// quantity: a decimal number with an optional suffix (m, k, M, G, T, P, E,
// Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e3).
func ValidateQuantity(s string) error {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, suffix := s[:i], s[i:]
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || !digits(frac) || hasDot && frac == "" {
		return fmt.Errorf("%q: want a non-negative number such as 500m, 2 or 16Gi", s)
	}
	switch suffix {
	case "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
		return nil
	}
	if !validExponent(suffix) {
		return fmt.Errorf("%q: unknown suffix %q (want m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3)", s, suffix)
	}
	return nil
}

func validExponent(s string) bool {
	if len(s) < 2 || (s[0] != 'e' && s[0] != 'E') {
		return false
	}
	s = strings.TrimPrefix(s[1:], "-")
	return s != "" && digits(s) && len(s) <= 2
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validateGroup accepts what a Kubernetes RBAC subject name may be: any
// non-empty string without control characters.
func validateGroup(g string) error {
	if strings.TrimSpace(g) == "" {
		return errors.New("empty group name")
	}
	if strings.HasPrefix(g, "system:") {
		// system:authenticated, system:serviceaccounts, system:masters...:
		// Kubernetes' own groups, which hold every user, every workload or
		// the cluster's admins, never a tenant's people.
		return fmt.Errorf("group %q is one of Kubernetes' system: groups, not a tenant's", g)
	}
	for i := 0; i < len(g); i++ {
		if g[i] < 0x20 || g[i] == 0x7f {
			return fmt.Errorf("group %q contains a control character", g)
		}
	}
	return nil
}

// validateURL accepts "" (use the platform's) or an absolute http(s) URL.
func validateURL(u string) error {
	if u == "" {
		return nil
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "ssh://") && !strings.HasPrefix(u, "git@") {
		return fmt.Errorf("%q: want an absolute URL", u)
	}
	if strings.ContainsAny(u, " \t\r\n") {
		return fmt.Errorf("%q contains white space", u)
	}
	return nil
}
