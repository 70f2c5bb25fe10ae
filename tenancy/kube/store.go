package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/tenantgate/tenantgate/tenancy"
)

// Errors of Store, for the admin API to map to 404 and 409.
var (
	ErrNotFound = errors.New("tenant not found")
	ErrExists   = errors.New("tenant already exists")
)

// Store creates, reads and deletes Tenant objects.
type Store struct {
	client dynamic.Interface
}

// NewStore returns a store on the cluster client reaches.
func NewStore(client dynamic.Interface) *Store { return &Store{client: client} }

// ObjectName returns the name of the Tenant object of tenant id: the ID
// itself when it is a valid object name (a UUID is), and otherwise a name
// derived from its hash. One ID has one name, so the API server refuses a
// second object for the same tenant.
func ObjectName(id string) string {
	if len(validation.IsDNS1123Subdomain(id)) == 0 {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "tenant-" + hex.EncodeToString(h[:10])
}

// List returns every valid tenant, by ID.
func (s *Store) List(ctx context.Context) ([]tenancy.Config, error) {
	var out []tenancy.Config
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := s.client.Resource(GVR).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			if c, err := FromObject(&list.Items[i]); err == nil {
				out = append(out, c)
			}
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns the tenant id.
func (s *Store) Get(ctx context.Context, id string) (tenancy.Config, error) {
	u, err := s.client.Resource(GVR).Get(ctx, ObjectName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return tenancy.Config{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return tenancy.Config{}, err
	}
	c, err := FromObject(u)
	if err != nil || c.ID != id {
		return tenancy.Config{}, fmt.Errorf("%w: %s (its object is invalid or holds another ID)", ErrNotFound, id)
	}
	return c, nil
}

// Create stores c, which must be valid.
func (s *Store) Create(ctx context.Context, c tenancy.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	u, err := ToObject(ObjectName(c.ID), c)
	if err != nil {
		return err
	}
	_, err = s.client.Resource(GVR).Create(ctx, u, metav1.CreateOptions{FieldManager: "tenantgate-admin"})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%w: %s", ErrExists, c.ID)
	}
	return err
}

// Delete removes the tenant id.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	err := s.client.Resource(GVR).Delete(ctx, ObjectName(id), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return err
}
