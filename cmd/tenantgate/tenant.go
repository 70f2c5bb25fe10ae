package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/tenancy"
	"github.com/tenantgate/tenantgate/tenancy/kube"
	"github.com/tenantgate/tenantgate/tenancy/provision"
)

const tenantUsage = `usage: tenantgate tenant <render|plan|apply|delete|expire|reconcile> [flags]

  render   print every object of the provisioned tenants as YAML (no cluster needed)
  plan     show what apply would change in the cluster, as a diff
  apply    create and update the tenants' objects with server-side apply; prune what is no longer rendered
  delete   --tenant ID: mark the tenant for deletion; once its retention period is over, remove its objects
  expire   delete the break-glass roles whose 24 hours are over
  reconcile  apply, then delete (with retention) the tenants no longer in the registry, then expire; --every D repeats
`

// tenantFlags are the flags every tenant subcommand takes.
type tenantFlags struct {
	config, tenant, kubeconfig, context, provLog, agent string
	fromCluster                                         bool
	now                                                 string
	every                                               time.Duration
}

func tenantCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tenantUsage)
		return fmt.Errorf("%w: tenant needs a subcommand", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("tenant "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f tenantFlags
	fs.StringVar(&f.config, "config", "", "configuration file whose tenants (and provisioning section) to use (default: the embedded default)")
	fs.StringVar(&f.tenant, "tenant", "", "only this tenant ID")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: the configuration's kubernetes.kubeconfig, in-cluster, $KUBECONFIG)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context")
	fs.BoolVar(&f.fromCluster, "from-cluster", false, "also take the cluster's Tenant objects (the file wins a clash)")
	fs.StringVar(&f.provLog, "prov-log", "", "append the PROV-O record of every step to this file (JSON-LD, one activity a line)")
	fs.StringVar(&f.agent, "agent", "", "who acts, for events and provenance (default: $USER@tenantgate)")
	fs.StringVar(&f.now, "now", "", "render as of this RFC 3339 time (default: now); decides break-glass windows")
	fs.DurationVar(&f.every, "every", 0, "reconcile: repeat every D until interrupted (default: once)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch sub {
	case "render":
		return tenantRender(&f, stdout)
	case "plan", "apply", "delete", "expire", "reconcile":
		return tenantCluster(ctx, sub, &f, stdout, stderr)
	}
	fmt.Fprint(stderr, tenantUsage)
	return fmt.Errorf("%w: unknown tenant subcommand %q", errUsage, sub)
}

func (f *tenantFlags) load() (*config.Config, time.Time, error) {
	raw := config.Default
	if f.config != "" {
		var err error
		if raw, err = os.ReadFile(f.config); err != nil {
			return nil, time.Time{}, err
		}
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("configuration %s is invalid:\n%w", nameOr(f.config), err)
	}
	now := time.Now()
	if f.now != "" {
		if now, err = time.Parse(time.RFC3339, f.now); err != nil {
			return nil, now, fmt.Errorf("%w: --now: %v", errUsage, err)
		}
	}
	if f.kubeconfig != "" {
		cfg.Kubernetes.Kubeconfig = f.kubeconfig
	}
	if f.context != "" {
		cfg.Kubernetes.Context = f.context
	}
	return cfg, now, nil
}

// selected returns the provisioned tenants the flags select.
func (f *tenantFlags) selected(tenants []tenancy.Config) ([]tenancy.Config, error) {
	var out []tenancy.Config
	for _, c := range tenants {
		if c.Provision != nil && (f.tenant == "" || c.ID == f.tenant) {
			out = append(out, c)
		}
	}
	if f.tenant != "" && len(out) == 0 {
		return nil, fmt.Errorf("no provisioned tenant %q", f.tenant)
	}
	return out, nil
}

func tenantRender(f *tenantFlags, stdout io.Writer) error {
	cfg, now, err := f.load()
	if err != nil {
		return err
	}
	tenants, err := f.selected(cfg.Tenants)
	if err != nil {
		return err
	}
	for i := range tenants {
		objs, err := provision.Render(&tenants[i], cfg.Provisioning, now)
		if err != nil {
			return err
		}
		for _, o := range objs {
			y, err := sigsyaml.Marshal(o.Object)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "---\n%s", y)
		}
	}
	return nil
}

func tenantCluster(ctx context.Context, sub string, f *tenantFlags, stdout, stderr io.Writer) error {
	cfg, now, err := f.load()
	if err != nil {
		return err
	}
	client, err := cfg.Kubernetes.Dynamic()
	if err != nil {
		return err
	}
	agent := f.agent
	if agent == "" {
		agent = os.Getenv("USER") + "@tenantgate"
	}
	opts := provision.Options{
		Client: client, Platform: cfg.Provisioning, Agent: agent, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if f.now != "" {
		opts.Now = func() time.Time { return now }
	}
	if f.provLog != "" {
		sink, err := provision.NewFileSink(f.provLog)
		if err != nil {
			return err
		}
		defer sink.Close()
		opts.Sink = sink
	}
	p, err := provision.New(opts)
	if err != nil {
		return err
	}
	switch sub {
	case "delete":
		return tenantDelete(ctx, p, f.tenant, stdout)
	case "expire":
		changes, err := p.ExpireBreakGlass(ctx)
		for _, c := range changes {
			fmt.Fprintln(stdout, c)
		}
		fmt.Fprintf(stdout, "%d expired break-glass objects deleted\n", len(changes))
		return err
	}
	all := cfg.Tenants
	if f.fromCluster {
		stored, err := kube.NewStore(client).List(ctx)
		if err != nil {
			return fmt.Errorf("listing Tenant objects: %w", err)
		}
		all, _ = tenancy.Merge(all, stored)
	}
	tenants, err := f.selected(all)
	if err != nil {
		return err
	}
	if sub == "reconcile" {
		return tenantReconcile(ctx, p, f, cfg.Tenants, client, stdout)
	}
	var pl *provision.Plan
	if sub == "plan" {
		pl, err = p.Plan(ctx, tenants)
	} else {
		pl, err = p.Apply(ctx, tenants)
	}
	if pl != nil {
		fmt.Fprint(stdout, pl)
	}
	return err
}

func tenantDelete(ctx context.Context, p *provision.Provisioner, id string, stdout io.Writer) error {
	if id == "" {
		return fmt.Errorf("%w: delete needs --tenant ID", errUsage)
	}
	res, err := p.Delete(ctx, id)
	if err != nil {
		return err
	}
	switch res.State {
	case provision.Scheduled:
		fmt.Fprintf(stdout, "tenant %s marked for deletion; its objects are kept until %s, run delete again after that\n", id, res.DeleteAfter.Format(time.RFC3339))
	case provision.Retained:
		fmt.Fprintf(stdout, "tenant %s is kept until %s (retention period)\n", id, res.DeleteAfter.Format(time.RFC3339))
	case provision.Deleted:
		for _, c := range res.Changes {
			fmt.Fprintln(stdout, c)
		}
		fmt.Fprintf(stdout, "tenant %s deleted (%d objects; the namespace takes the rest with it)\n", id, len(res.Changes))
	case provision.Absent:
		return errors.New("tenant " + id + " has no objects in the cluster")
	}
	return nil
}

// tenantReconcile runs Reconcile once, or every f.every until ctx ends.
// Reconcile deletes the tenants that are not in its registry, so each pass
// always takes the cluster's Tenant objects too (whether or not
// --from-cluster is given), unless the Tenant CRD is not installed; a pass
// that cannot read them is skipped rather than run on half the registry.
func tenantReconcile(ctx context.Context, p *provision.Provisioner, f *tenantFlags, file []tenancy.Config, client dynamic.Interface, stdout io.Writer) error {
	if f.tenant != "" {
		return fmt.Errorf("%w: reconcile works on every tenant; --tenant does not apply", errUsage)
	}
	store := kube.NewStore(client)
	for {
		all := file
		var left map[string]error // Tenant objects left out, by name
		var held []string
		objs, err := store.Objects(ctx)
		switch {
		case apierrors.IsNotFound(err):
			err = nil
		case err == nil:
			all, left, held = mergeObjects(file, objs)
		default:
			err = fmt.Errorf("listing Tenant objects: %w", err)
		}
		if err == nil {
			var res *provision.ReconcileResult
			res, err = p.Reconcile(ctx, all, held...)
			var pl *provision.Plan
			if res != nil {
				pl = res.Plan
			}
			if serr := writeTenantStatuses(ctx, store, objs, left, pl); serr != nil {
				fmt.Fprintln(stdout, "writing Tenant statuses:", serr)
			}
			if res != nil && res.Plan != nil {
				fmt.Fprint(stdout, res.Plan)
				for _, id := range sortedIDs(res.Deletions) {
					if d := res.Deletions[id]; d != nil {
						fmt.Fprintf(stdout, "tenant %s is no longer in the registry: %s (delete after %s)\n", id, d.State, d.DeleteAfter.Format(time.RFC3339))
					}
				}
				fmt.Fprintf(stdout, "%d expired break-glass objects deleted\n", len(res.Expired))
			}
		}
		if f.every == 0 {
			return err
		}
		if err != nil {
			fmt.Fprintln(stdout, "reconcile failed, retrying at the next pass:", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.every):
		}
	}
}

// mergeObjects merges the valid Tenant objects into the file's tenants. It
// returns the registry, why each object left out of it was (invalid, or in
// conflict), by name, and the tenant IDs those objects name, which
// Reconcile must hold: neither apply nor delete.
func mergeObjects(file []tenancy.Config, objs []kube.Object) (all []tenancy.Config, left map[string]error, held []string) {
	var valid []tenancy.Config
	var names []string
	left = map[string]error{}
	for _, o := range objs {
		if o.Err != nil {
			left[o.Name] = o.Err
			// The tenant an invalid object stands for is the one its name
			// designates: an object named otherwise holds nobody's data.
			if o.Config.ID != "" && kube.ObjectName(o.Config.ID) == o.Name {
				held = append(held, o.Config.ID)
			} else if tenancy.ValidateUUID(o.Name) == nil {
				held = append(held, o.Name)
			}
			continue
		}
		valid = append(valid, o.Config)
		names = append(names, o.Name)
	}
	all, out := tenancy.MergeReport(file, valid)
	for i, err := range out {
		left[names[i]] = err
		held = append(held, valid[i].ID)
	}
	return all, left, held
}

// writeTenantStatuses records in each Tenant object's status what the pass
// made of it: Invalid or Conflict for the objects left out of the registry
// (left, by name) or that could not be rendered, whose Kubernetes objects
// are held as they are; Registered; Provisioned when every step of its
// tenant succeeded. Otherwise (a step failed, or the pass could not plan)
// the status is left as it was: it must not claim what nobody checked.
func writeTenantStatuses(ctx context.Context, store *kube.Store, objs []kube.Object, left map[string]error, pl *provision.Plan) error {
	const held = " Its Kubernetes objects, if any, are kept as they are (neither updated nor deleted) until this is fixed."
	objects, failed := map[string]int{}, map[string]bool{}
	if pl != nil {
		for _, c := range pl.Changes {
			objects[c.Tenant]++
			if c.Err != nil {
				failed[c.Tenant] = true
			}
		}
	}
	var errs []error
	for _, o := range objs {
		st := kube.Status{ObservedGeneration: o.Generation}
		switch err, out := left[o.Name]; {
		case out && o.Err != nil:
			st.Phase, st.Message = kube.PhaseInvalid, err.Error()+"."+held
		case out:
			st.Phase, st.Message = kube.PhaseConflict, err.Error()+"."+held
		case o.Config.Provision == nil:
			st.Phase, st.Message = kube.PhaseRegistered, "enforced by the gateways; without a provision section it has no Kubernetes objects"
		case pl == nil || failed[o.Config.ID]:
			continue
		case pl.Unrendered[o.Config.ID] != nil:
			st.Phase, st.Message = kube.PhaseInvalid, pl.Unrendered[o.Config.ID].Error()+"."+held
		default:
			st.Phase, st.Message = kube.PhaseProvisioned, fmt.Sprintf("%d objects applied for namespace %s", objects[o.Config.ID], provision.Namespace(o.Config.ID))
		}
		if len(st.Message) > 1024 {
			st.Message = strings.ToValidUTF8(st.Message[:1024], "")
		}
		if err := store.SetStatus(ctx, o, st); err != nil {
			errs = append(errs, fmt.Errorf("tenant object %s: %w", o.Name, err))
		}
	}
	return errors.Join(errs...)
}

func sortedIDs(m map[string]*provision.DeleteResult) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
