// Package provision renders a tenant of the tenancy registry into the
// Kubernetes objects that isolate it in a shared cluster, and plans,
// applies and deletes them through the Kubernetes API.
//
// The same tenancy.Config that the gateway enforces is the source of
// every object, so the tenant a gateway admits and the namespace, roles,
// quotas, network policies, encrypted storage, secrets store, GitOps
// application and backups that the cluster gives it cannot drift apart.
//
// The package imports no other tenantgate package than tenancy and keeps
// no global state: a program embeds it with New and its own Options.
package provision
