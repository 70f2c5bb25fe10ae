// Package admin serves the tenant admin API on the public listener:
//
//	GET    /admin/v1/tenants        the tenants the gateway enforces, and where each comes from
//	POST   /admin/v1/tenants        create a tenant (a tenants entry of the configuration file, as JSON or YAML)
//	GET    /admin/v1/tenants/{id}   one tenant created through the API
//	DELETE /admin/v1/tenants/{id}   delete a tenant created through the API
//
// Only callers holding a principal of the platform-admin grant (the
// top-level admins section of the configuration) may use it. Tenants are
// kept in a Store (Tenant objects in the Kubernetes API), from which every
// gateway replica picks them up; the configuration file's tenants are
// read-only here.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tenantgate/tenantgate/proxy/internal/httperr"
	"github.com/tenantgate/tenantgate/proxy/internal/reqctx"
	"github.com/tenantgate/tenantgate/tenancy"
)

// Errors a Store returns, wrapped.
var (
	ErrNotFound = errors.New("tenant not found")
	ErrExists   = errors.New("tenant already exists")
	// ErrInvalid is a tenant that is valid on its own but that the store
	// cannot take (the platform settings cannot provision it).
	ErrInvalid = errors.New("tenant refused")
)

// Store keeps the tenants created through the API. Its errors wrap
// ErrNotFound and ErrExists where they apply (tenancy/kube.Store is adapted
// to it by the caller).
type Store interface {
	List(ctx context.Context) ([]tenancy.Config, error)
	Get(ctx context.Context, id string) (tenancy.Config, error)
	Create(ctx context.Context, c tenancy.Config) error
	Delete(ctx context.Context, id string) error
}

// Config is the platform-admin grant.
type Config struct {
	// Principals may use the admin API, written as in tenant grants
	// (subject:, client: or group:provider/value).
	Principals []string `yaml:"principals"`
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	for _, s := range c.Principals {
		p, err := tenancy.ParsePrincipal(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("admins: %w", err))
		case p.Kind == tenancy.TenantClaim:
			errs = append(errs, fmt.Errorf("admins: principal %q: a tenant claim cannot make a platform admin", s))
		}
	}
	return errors.Join(errs...)
}

// MaxBodyBytes bounds a tenant definition.
const MaxBodyBytes = 1 << 20

// Deps are the handler's dependencies.
type Deps struct {
	Store  Store
	Logger *slog.Logger
	// FileTenant returns the tenant id of the configuration file, which the
	// API may not change, and whether there is one.
	FileTenant func(id string) (tenancy.Config, bool)
	// Providers are the authentication providers configured; a grant
	// naming another one could never match, so it is refused. Nil skips
	// the check.
	Providers map[string]bool
}

// Handler serves the admin API.
type Handler struct {
	deps   Deps
	admins map[string]bool
}

// New returns the admin API handler.
func New(c Config, d Deps) *Handler {
	admins := make(map[string]bool, len(c.Principals))
	for _, s := range c.Principals {
		if p, err := tenancy.ParsePrincipal(s); err == nil {
			admins[p.Key()] = true
		}
	}
	return &Handler{deps: d, admins: admins}
}

// ServeHTTP authorizes the caller and dispatches by method and path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, ok := reqctx.From(r.Context())
	if !ok || info.Caller == nil || !h.isAdmin(info.Caller) {
		if ok {
			info.Reason = "not_admin"
		}
		httperr.WritePrometheus(w, r, httperr.New(http.StatusForbidden, "not_admin", "the admin API needs a principal of the platform-admin grant (admins.principals)"))
		return
	}
	id, hasID := strings.CutPrefix(r.URL.Path, "/admin/v1/tenants/")
	var err error
	switch {
	case !hasID && r.Method == http.MethodGet:
		err = h.list(w, r, info.Registry)
	case !hasID && r.Method == http.MethodPost:
		err = h.create(w, r, info.Registry)
	case hasID && r.Method == http.MethodGet:
		err = h.get(w, r, id)
	case hasID && r.Method == http.MethodDelete:
		err = h.delete(w, r, id)
	default:
		err = httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "method %s is not allowed on %s", r.Method, r.URL.Path)
	}
	if err != nil {
		e := httperr.From(err)
		info.Reason = e.Reason
		httperr.WritePrometheus(w, r, e)
	}
}

func (h *Handler) isAdmin(c *tenancy.Caller) bool {
	for _, k := range c.Keys(nil) {
		if h.admins[k] {
			return true
		}
	}
	return false
}

// Tenant is one element of the list answer.
type Tenant struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Source      string `json:"source"` // file or api
	Provisioned bool   `json:"provisioned"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, reg *tenancy.Registry) error {
	stored, err := h.deps.Store.List(r.Context())
	if err != nil {
		return h.storeError(err)
	}
	fromAPI := make(map[string]tenancy.Config, len(stored))
	for _, c := range stored {
		fromAPI[c.ID] = c
	}
	var out []Tenant
	for _, id := range reg.IDs() {
		t, _ := reg.Tenant(id)
		e := Tenant{ID: id, Name: t.Name, Source: "api"}
		if c, ok := h.deps.FileTenant(id); ok {
			e.Source, e.Provisioned = "file", c.Provision != nil
		} else if c, ok := fromAPI[id]; ok {
			e.Provisioned = c.Provision != nil
			delete(fromAPI, id)
		}
		out = append(out, e)
	}
	// Stored but not (yet) enforced: just created, or clashing with the
	// file (the file wins).
	for _, c := range fromAPI {
		out = append(out, Tenant{ID: c.ID, Name: c.Name, Source: "api (not enforced)", Provisioned: c.Provision != nil})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, reg *tenancy.Registry) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return httperr.Wrap(http.StatusBadRequest, "bad_body", err, "reading the body")
	}
	if len(body) > MaxBodyBytes {
		return httperr.New(http.StatusRequestEntityTooLarge, "too_large", "a tenant definition is limited to %d bytes", MaxBodyBytes)
	}
	var c tenancy.Config
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return httperr.Wrap(http.StatusBadRequest, "bad_tenant", err, "decoding the tenant (a tenants entry of the configuration file, as JSON or YAML): %v", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return httperr.New(http.StatusBadRequest, "bad_tenant", "the body holds more than one YAML document: send one tenant per request")
	}
	if err := c.Validate(); err != nil {
		return httperr.Wrap(http.StatusBadRequest, "bad_tenant", err, "%v", err)
	}
	if err := h.checkProviders(&c); err != nil {
		return httperr.Wrap(http.StatusBadRequest, "bad_tenant", err, "%v", err)
	}
	_, inFile := h.deps.FileTenant(c.ID)
	if _, ok := reg.Tenant(c.ID); ok || inFile {
		return httperr.New(http.StatusConflict, "exists", "tenant %q already exists", c.ID)
	}
	if err := h.deps.Store.Create(r.Context(), c); err != nil {
		return h.storeError(err)
	}
	h.deps.Logger.Info("tenant created through the admin API", "tenant", c.ID)
	return writeJSON(w, http.StatusCreated, map[string]any{"id": c.ID,
		"message": "created; every gateway replica enforces it once its watch has seen it (normally within a second), " +
			"unless it clashes with a tenant already in (an upstream value, a KMS key...): then the list shows it as not enforced " +
			"and its Tenant object's status says why"})
}

// checkProviders refuses grants whose principals name a provider that is
// not configured: such a grant would never match anyone, silently.
func (h *Handler) checkProviders(c *tenancy.Config) error {
	if h.deps.Providers == nil {
		return nil
	}
	var errs []error
	for _, p := range c.Principals() {
		if !h.deps.Providers[p.Provider] {
			errs = append(errs, fmt.Errorf("tenant %q: principal %s names provider %q, which is not configured (configured: %s)",
				c.ID, p, p.Provider, strings.Join(slices.Sorted(maps.Keys(h.deps.Providers)), ", ")))
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) error {
	c, err := h.deps.Store.Get(r.Context(), id)
	if err != nil {
		return h.storeError(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(y)
	return err
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, id string) error {
	if _, ok := h.deps.FileTenant(id); ok {
		return httperr.New(http.StatusConflict, "file_tenant", "tenant %q is defined in the configuration file; remove it there", id)
	}
	if err := h.deps.Store.Delete(r.Context(), id); err != nil {
		return h.storeError(err)
	}
	h.deps.Logger.Info("tenant deleted through the admin API", "tenant", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) storeError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return httperr.Wrap(http.StatusNotFound, "not_found", err, "%v", err)
	case errors.Is(err, ErrExists):
		return httperr.Wrap(http.StatusConflict, "exists", err, "%v", err)
	case errors.Is(err, ErrInvalid):
		return httperr.Wrap(http.StatusBadRequest, "bad_tenant", err, "%v", err)
	}
	return httperr.Wrap(http.StatusBadGateway, "store_failed", err, "the tenant store failed")
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
