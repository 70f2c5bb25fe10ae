package kube

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config connects tenantgate to a Kubernetes cluster. It is the kubernetes
// section of the configuration file.
type Config struct {
	// WatchTenants makes the gateway enforce the cluster's Tenant objects
	// as well as the file's tenants, and keeps the admin API's tenants
	// there.
	WatchTenants bool `yaml:"watch_tenants"`
	// Kubeconfig is a kubeconfig file. Empty: the in-cluster service
	// account, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context is the kubeconfig context. Empty: its current context.
	Context string `yaml:"context"`
}

// RESTConfig returns the client configuration c describes.
func (c Config) RESTConfig() (*rest.Config, error) {
	if c.Kubeconfig == "" && c.Context == "" {
		if rc, err := rest.InClusterConfig(); err == nil {
			return rc, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return rc, nil
}

// Dynamic returns a dynamic client of the cluster c describes.
func (c Config) Dynamic() (dynamic.Interface, error) {
	rc, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	// Provisioning many tenants is many requests; client-go's default of
	// 5 per second would make a first apply of 1,000 tenants take an hour.
	rc.QPS, rc.Burst = 100, 200
	return dynamic.NewForConfig(rc)
}
