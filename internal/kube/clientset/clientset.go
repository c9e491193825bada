// Package clientset adapts a client-go kubernetes.Interface — in tests, the fake
// clientset — to kube.API. It links every API group of Kubernetes, which is why
// internal/kube does not use it and the portpatrol binary must not import it. It does
// not import internal/kube either, so that package's own tests can use it.
package clientset

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/watchlist"
)

// The resources internal/kube reads, as its Reader names them.
var (
	kubeServices       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	kubeEndpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	kubePods           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	kubeNodes          = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	kubeIngresses      = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	kubeNamespaces     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Adapter serves kube.API from a Clientset. It is safe for concurrent use as far as the
// Clientset is.
type Adapter struct {
	c kubernetes.Interface
}

// New returns an Adapter over c.
func New(c kubernetes.Interface) *Adapter { return &Adapter{c: c} }

// List implements kube.Reader.
func (a *Adapter) List(ctx context.Context, r schema.GroupVersionResource, ns string, o metav1.ListOptions) (runtime.Object, error) {
	switch r {
	case kubeServices:
		return a.c.CoreV1().Services(ns).List(ctx, o)
	case kubeEndpointSlices:
		return a.c.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
	case kubePods:
		return a.c.CoreV1().Pods(ns).List(ctx, o)
	case kubeNodes:
		return a.c.CoreV1().Nodes().List(ctx, o)
	case kubeIngresses:
		return a.c.NetworkingV1().Ingresses(ns).List(ctx, o)
	case kubeNamespaces:
		return a.c.CoreV1().Namespaces().List(ctx, o)
	}
	return nil, fmt.Errorf("clientset: unknown resource %s", r)
}

// Watch implements kube.Reader.
func (a *Adapter) Watch(ctx context.Context, r schema.GroupVersionResource, ns string, o metav1.ListOptions) (watch.Interface, error) {
	switch r {
	case kubeServices:
		return a.c.CoreV1().Services(ns).Watch(ctx, o)
	case kubeEndpointSlices:
		return a.c.DiscoveryV1().EndpointSlices(ns).Watch(ctx, o)
	case kubePods:
		return a.c.CoreV1().Pods(ns).Watch(ctx, o)
	case kubeNodes:
		return a.c.CoreV1().Nodes().Watch(ctx, o)
	case kubeIngresses:
		return a.c.NetworkingV1().Ingresses(ns).Watch(ctx, o)
	case kubeNamespaces:
		return a.c.CoreV1().Namespaces().Watch(ctx, o)
	}
	return nil, fmt.Errorf("clientset: unknown resource %s", r)
}

// IsWatchListSemanticsUnSupported tells informers whether the Clientset can stream a
// list through a watch; the fake clientset cannot.
func (a *Adapter) IsWatchListSemanticsUnSupported() bool {
	return watchlist.DoesClientNotSupportWatchListSemantics(a.c)
}

// GetLease implements kube.Leases.
func (a *Adapter) GetLease(ctx context.Context, ns, name string) (*coordinationv1.Lease, error) {
	return a.c.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
}

// CreateLease implements kube.Leases.
func (a *Adapter) CreateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	return a.c.CoordinationV1().Leases(l.Namespace).Create(ctx, l, metav1.CreateOptions{})
}

// UpdateLease implements kube.Leases.
func (a *Adapter) UpdateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	return a.c.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{})
}
