package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
// derived from its hash. One ID has one name and one name one ID (an ID
// shaped like a hashed name is hashed too, so it cannot take another
// tenant's name), and FromObject refuses an object named otherwise: the API
// server refuses a second object for the same tenant.
func ObjectName(id string) string {
	if len(validation.IsDNS1123Subdomain(id)) == 0 && !hashedName(id) {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return hashPrefix + hex.EncodeToString(h[:10])
}

const hashPrefix = "tenant-"

// hashedName reports whether name has the shape of a hashed object name.
func hashedName(name string) bool {
	h, ok := strings.CutPrefix(name, hashPrefix)
	if !ok || len(h) != 20 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// List returns every valid tenant, by ID.
func (s *Store) List(ctx context.Context) ([]tenancy.Config, error) {
	objs, err := s.Objects(ctx)
	if err != nil {
		return nil, err
	}
	var out []tenancy.Config
	for _, o := range objs {
		if o.Err == nil {
			out = append(out, o.Config)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Object is one Tenant object as the API server holds it.
type Object struct {
	// Name, Generation and Created are the object's.
	Name       string
	Generation int64
	Created    time.Time
	// Config is its tenant, when Err is nil; Err says why it is invalid.
	Config tenancy.Config
	Err    error
	// Status is what its status holds now.
	Status Status
}

// Status is a Tenant object's status, which the provisioner writes.
type Status struct {
	// Phase is one of the Phase constants.
	Phase string `json:"phase,omitempty"`
	// Message says what the phase means for this tenant.
	Message string `json:"message,omitempty"`
	// ObservedGeneration is the generation of the spec the phase is about.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Phases of a Tenant object.
const (
	// PhaseInvalid: the spec is not a valid tenant; gateways ignore it.
	PhaseInvalid = "Invalid"
	// PhaseConflict: another definition of the same ID (in the
	// configuration file, or an older object) wins.
	PhaseConflict = "Conflict"
	// PhaseRegistered: valid and enforced by gateways; it has no provision
	// section, so it has no Kubernetes objects.
	PhaseRegistered = "Registered"
	// PhaseProvisioned: its Kubernetes objects match the spec.
	PhaseProvisioned = "Provisioned"
)

// Objects returns every Tenant object, valid or not, oldest first (the
// order in which tenancy.Merge lets the older of two definitions win).
func (s *Store) Objects(ctx context.Context) ([]Object, error) {
	var out []Object
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := s.client.Resource(GVR).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			u := &list.Items[i]
			o := Object{Name: u.GetName(), Generation: u.GetGeneration(), Created: u.GetCreationTimestamp().Time}
			o.Config, o.Err = FromObject(u)
			if st, ok := u.Object["status"].(map[string]any); ok {
				o.Status.Phase, _ = st["phase"].(string)
				o.Status.Message, _ = st["message"].(string)
				o.Status.ObservedGeneration, _ = st["observedGeneration"].(int64)
			}
			out = append(out, o)
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// SetStatus writes st into the status of the Tenant object name, unless it
// holds st already (a write would wake every gateway's watch for nothing).
func (s *Store) SetStatus(ctx context.Context, o Object, st Status) error {
	if o.Status == st {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = s.client.Resource(GVR).Patch(ctx, o.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: "tenantgate-provisioner"}, "status")
	return err
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
