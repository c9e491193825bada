package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// RestartedAtAnnotation is the pod template annotation a rollout restart sets, as
// kubectl rollout restart does.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// WorkloadState is what automation reads of a Deployment, StatefulSet or DaemonSet.
type WorkloadState struct {
	Replicas    int32  // spec.replicas; 0 for a DaemonSet
	RestartedAt string // the pod template's restartedAt annotation
	Generation  int64
}

// Workloads restarts and scales Deployments, StatefulSets and DaemonSets through one
// apps/v1 REST client speaking JSON (no typed scheme is registered). It is safe for
// concurrent use.
type Workloads struct{ apps *rest.RESTClient }

// NewWorkloads returns Workloads for cfg.
func NewWorkloads(cfg *rest.Config) (*Workloads, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{Group: "apps", Version: "v1"}
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	c.ContentType = runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: apps/v1: %w", err)
	}
	return &Workloads{apps: rc}, nil
}

// resourceOf maps a kind to its resource.
func resourceOf(kind string) (string, error) {
	switch kind {
	case "Deployment":
		return "deployments", nil
	case "StatefulSet":
		return "statefulsets", nil
	case "DaemonSet":
		return "daemonsets", nil
	}
	return "", fmt.Errorf("kind %q: want Deployment, StatefulSet or DaemonSet", kind)
}

// GetWorkload reads a workload; a missing one is an error that says so.
func (w *Workloads) GetWorkload(ctx context.Context, kind, namespace, name string) (WorkloadState, error) {
	res, err := resourceOf(kind)
	if err != nil {
		return WorkloadState{}, err
	}
	raw, err := w.apps.Get().Namespace(namespace).Resource(res).Name(name).Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return WorkloadState{}, fmt.Errorf("%s %s/%s does not exist", kind, namespace, name)
	}
	if err != nil {
		return WorkloadState{}, fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
	}
	var obj struct {
		Metadata struct {
			Generation int64 `json:"generation"`
		} `json:"metadata"`
		Spec struct {
			Replicas *int32 `json:"replicas"`
			Template struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return WorkloadState{}, fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
	}
	wl := WorkloadState{Generation: obj.Metadata.Generation, RestartedAt: obj.Spec.Template.Metadata.Annotations[RestartedAtAnnotation]}
	if obj.Spec.Replicas != nil {
		wl.Replicas = *obj.Spec.Replicas
	}
	return wl, nil
}

// RestartWorkload sets the pod template's restartedAt annotation to at, which rolls
// the workload's pods as kubectl rollout restart does.
func (w *Workloads) RestartWorkload(ctx context.Context, kind, namespace, name string, at time.Time) error {
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{RestartedAtAnnotation: at.UTC().Format(time.RFC3339)}}}}}
	return w.patch(ctx, kind, namespace, name, patch)
}

// ScaleWorkload sets spec.replicas; a DaemonSet cannot be scaled.
func (w *Workloads) ScaleWorkload(ctx context.Context, kind, namespace, name string, replicas int32) error {
	if kind == "DaemonSet" {
		return fmt.Errorf("a DaemonSet runs one pod per node and cannot be scaled")
	}
	return w.patch(ctx, kind, namespace, name, map[string]any{"spec": map[string]any{"replicas": replicas}})
}

func (w *Workloads) patch(ctx context.Context, kind, namespace, name string, patch any) error {
	res, err := resourceOf(kind)
	if err != nil {
		return err
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	err = w.apps.Patch(types.MergePatchType).Namespace(namespace).Resource(res).Name(name).Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("patch %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}

// WorkloadReplicas returns a workload's spec.replicas and its pod template's
// restartedAt annotation (automation's view of GetWorkload).
func (w *Workloads) WorkloadReplicas(ctx context.Context, kind, namespace, name string) (int32, string, error) {
	s, err := w.GetWorkload(ctx, kind, namespace, name)
	return s.Replicas, s.RestartedAt, err
}
