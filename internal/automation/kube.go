package automation

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// KubeWorkloads is what the kube action asks of a cluster; the daemon gives it
// internal/kube's Workloads, which speaks to the API server through an apps/v1 REST
// client.
type KubeWorkloads interface {
	// WorkloadReplicas returns spec.replicas and the pod template's restartedAt
	// annotation, or an error saying the workload does not exist.
	WorkloadReplicas(ctx context.Context, kind, namespace, name string) (replicas int32, restartedAt string, err error)
	RestartWorkload(ctx context.Context, kind, namespace, name string, at time.Time) error
	ScaleWorkload(ctx context.Context, kind, namespace, name string, replicas int32) error
}

// Kube restarts a Deployment, StatefulSet or DaemonSet (operation restart: a rollout
// restart by the pod template's restartedAt annotation, as kubectl does) or scales a
// Deployment or StatefulSet to replicas within min_replicas and max_replicas (operation
// scale; rolled back to the replicas it had).
type Kube struct {
	Params Params
	API    KubeWorkloads
	// Now stamps a restart; nil means time.Now.
	Now func() time.Time
}

var _ Action = (*Kube)(nil)

type kubeDetail struct {
	kind, namespace, name, op string
	replicas                  int32
	// set by Apply: what it wrote and what was there before.
	applied *kubeApplied
}

type kubeApplied struct {
	restartedAt string
	before      int32
}

// Plan resolves the workload; a scale outside its bounds is refused here.
func (k *Kube) Plan(t Target) (Change, error) {
	d := kubeDetail{kind: k.Params.Kind, namespace: t.expand(k.Params.Namespace), name: t.expand(k.Params.Name), op: k.Params.Operation,
		replicas: int32(k.Params.Replicas), applied: &kubeApplied{}}
	if d.op == "" {
		d.op = "restart"
	}
	if d.namespace == "" {
		d.namespace = "default"
	}
	ref := d.kind + " " + d.namespace + "/" + d.name
	params := map[string]string{"kind": d.kind, "namespace": d.namespace, "name": d.name, "operation": d.op}
	diff := "rollout restart " + ref
	if d.op == "scale" {
		if k.Params.MaxReplicas > 0 && k.Params.Replicas > k.Params.MaxReplicas || k.Params.Replicas < k.Params.MinReplicas {
			return Change{}, fmt.Errorf("scale %s to %d: outside the bounds %d..%d", ref, k.Params.Replicas, k.Params.MinReplicas, k.Params.MaxReplicas)
		}
		params["replicas"] = strconv.Itoa(k.Params.Replicas)
		diff = fmt.Sprintf("scale %s to %d replicas", ref, k.Params.Replicas)
	}
	return Change{Action: "kube", Target: t.ID, Params: params, Diff: diff, detail: d}, nil
}

// PreCheck fails when there is no cluster connection or the workload does not exist.
func (k *Kube) PreCheck(ctx context.Context, c Change) error {
	d := c.detail.(kubeDetail)
	if k.API == nil {
		return fmt.Errorf("kube: no connection to a Kubernetes API server (set kubernetes.kubeconfig, or run in a pod with a service account), so %s %s/%s cannot be acted on", d.kind, d.namespace, d.name)
	}
	if _, _, err := k.API.WorkloadReplicas(ctx, d.kind, d.namespace, d.name); err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	if d.op == "scale" && d.kind == "DaemonSet" {
		return fmt.Errorf("kube: DaemonSet %s/%s runs one pod per node and cannot be scaled", d.namespace, d.name)
	}
	return nil
}

// State reads the workload's replicas and last restart, so that an approval is void
// when they drift.
func (k *Kube) State(ctx context.Context, c Change) string {
	d := c.detail.(kubeDetail)
	if k.API == nil {
		return "no cluster connection"
	}
	n, at, err := k.API.WorkloadReplicas(ctx, d.kind, d.namespace, d.name)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("replicas %d, restarted at %q", n, at)
}

// Apply patches the workload.
func (k *Kube) Apply(ctx context.Context, c Change) error {
	d := c.detail.(kubeDetail)
	if d.op == "scale" {
		before, _, err := k.API.WorkloadReplicas(ctx, d.kind, d.namespace, d.name)
		if err != nil {
			return err
		}
		d.applied.before = before
		return k.API.ScaleWorkload(ctx, d.kind, d.namespace, d.name, d.replicas)
	}
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	at := now().UTC().Truncate(time.Second)
	d.applied.restartedAt = at.Format(time.RFC3339)
	return k.API.RestartWorkload(ctx, d.kind, d.namespace, d.name, at)
}

// Verify checks the API server holds what Apply wrote.
func (k *Kube) Verify(ctx context.Context, c Change) error {
	d := c.detail.(kubeDetail)
	n, at, err := k.API.WorkloadReplicas(ctx, d.kind, d.namespace, d.name)
	switch {
	case err != nil:
		return err
	case d.op == "scale" && n != d.replicas:
		return fmt.Errorf("%s %s/%s has %d replicas, want %d", d.kind, d.namespace, d.name, n, d.replicas)
	case d.op != "scale" && at != d.applied.restartedAt:
		return fmt.Errorf("%s %s/%s was restarted at %q, not by this step (%q)", d.kind, d.namespace, d.name, at, d.applied.restartedAt)
	}
	return nil
}

// Rollback scales back to the replicas before; a restart has nothing to undo.
func (k *Kube) Rollback(ctx context.Context, c Change) error {
	d := c.detail.(kubeDetail)
	if d.op != "scale" {
		return nil
	}
	return k.API.ScaleWorkload(ctx, d.kind, d.namespace, d.name, d.applied.before)
}
