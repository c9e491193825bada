package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// DiscoveryConfig configures a Discovery. The zero value of every field but Client
// means: all namespaces, every Service, no periodic resync, 200ms debounce.
type DiscoveryConfig struct {
	Client Reader
	// Namespace limits discovery to one namespace; empty means all.
	Namespace string
	// Selector is a label selector ("team=payments,tier!=dev") limiting the Services
	// watched.
	Selector string
	// Options steer the joining (node address type, DaemonSet node, clock).
	Options Options
	// Resync is the informers' resync period; zero means none.
	Resync time.Duration
	// Debounce coalesces bursts of changes into one snapshot; zero means 200ms.
	Debounce time.Duration
	// OnUpdate, when set, is called with each new snapshot, one call at a time, from
	// Run's goroutine.
	OnUpdate func(*Snapshot)
	// Logger receives informer errors; nil discards them.
	Logger *slog.Logger
}

// Discovery keeps a Snapshot of the cluster current through shared informers for
// Services, EndpointSlices, Pods, Nodes and Ingresses. Its methods are safe for
// concurrent use.
type Discovery struct {
	cfg      DiscoveryConfig
	svcs     cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
	pods     cache.SharedIndexInformer
	nodes    cache.SharedIndexInformer
	ings     cache.SharedIndexInformer
	selector labels.Selector
	kick     chan struct{}
	synced   chan struct{}

	mu   sync.RWMutex
	snap *Snapshot
}

// NewDiscovery registers the informers; Run starts them.
func NewDiscovery(cfg DiscoveryConfig) (*Discovery, error) {
	if cfg.Client == nil {
		return nil, errors.New("kube discovery: no Kubernetes client")
	}
	sel := labels.Everything()
	if cfg.Selector != "" {
		s, err := labels.Parse(cfg.Selector)
		if err != nil {
			return nil, fmt.Errorf("kube discovery: selector %q: %w", cfg.Selector, err)
		}
		sel = s
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	d := &Discovery{
		cfg:      cfg,
		selector: sel,
		kick:     make(chan struct{}, 1),
		synced:   make(chan struct{}),
	}
	// Informers of only these five resources, built on cfg.Client: client-go's informer
	// factory would link every API group of Kubernetes into the binary.
	d.svcs = d.informer(Services, &corev1.Service{})
	d.slices = d.informer(EndpointSlices, &discoveryv1.EndpointSlice{})
	d.pods = d.informer(Pods, &corev1.Pod{})
	d.nodes = d.informer(Nodes, &corev1.Node{})
	d.ings = d.informer(Ingresses, &networkingv1.Ingress{})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.poke() },
		UpdateFunc: func(any, any) { d.poke() },
		DeleteFunc: func(any) { d.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{d.svcs, d.slices, d.pods, d.nodes, d.ings} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("kube discovery: %w", err)
		}
		if cfg.Logger != nil {
			log := cfg.Logger
			_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
				log.Warn("kubernetes watch failed", "err", err)
			})
		}
	}
	return d, nil
}

// informer watches r in the configured namespace (Nodes: cluster-wide).
func (d *Discovery) informer(r schema.GroupVersionResource, example runtime.Object) cache.SharedIndexInformer {
	c, ns := d.cfg.Client, d.cfg.Namespace
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, r, ns, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, r, ns, o)
		},
	}
	// A client that cannot stream a list through a watch (the fake clientset) says so;
	// the reflector then lists and watches as before.
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, c), example, d.cfg.Resync,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func (d *Discovery) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run starts the informers, waits for their caches to fill, then rebuilds the snapshot
// after every burst of changes until ctx is done. It returns an error only when the
// caches cannot be filled (no permission, API server gone) before ctx ends.
func (d *Discovery) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	infs := []struct {
		r   schema.GroupVersionResource
		inf cache.SharedIndexInformer
	}{{Services, d.svcs}, {EndpointSlices, d.slices}, {Pods, d.pods}, {Nodes, d.nodes}, {Ingresses, d.ings}}
	for _, i := range infs {
		wg.Go(func() { i.inf.RunWithContext(ctx) })
	}
	for _, i := range infs {
		if !cache.WaitForCacheSync(ctx.Done(), i.inf.HasSynced) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kube discovery: cache of %s did not sync", i.r)
		}
	}
	d.rebuild()
	close(d.synced)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		}
		// Let the burst settle: a rollout changes pods and slices in quick succession.
		t := time.NewTimer(d.cfg.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		d.rebuild()
	}
}

// Synced is closed once the first snapshot is built.
func (d *Discovery) Synced() <-chan struct{} { return d.synced }

// Snapshot returns the latest snapshot, or nil before the caches have synced.
func (d *Discovery) Snapshot() *Snapshot {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.snap
}

// Objects returns what the informers hold now, filtered by the Service selector.
func (d *Discovery) Objects() Objects {
	var o Objects
	for _, x := range d.svcs.GetStore().List() {
		if s, ok := x.(*corev1.Service); ok && d.selector.Matches(labels.Set(s.Labels)) {
			o.Services = append(o.Services, s)
		}
	}
	for _, x := range d.slices.GetStore().List() {
		if s, ok := x.(*discoveryv1.EndpointSlice); ok {
			o.EndpointSlices = append(o.EndpointSlices, s)
		}
	}
	for _, x := range d.pods.GetStore().List() {
		if p, ok := x.(*corev1.Pod); ok {
			o.Pods = append(o.Pods, p)
		}
	}
	for _, x := range d.nodes.GetStore().List() {
		if n, ok := x.(*corev1.Node); ok {
			o.Nodes = append(o.Nodes, n)
		}
	}
	for _, x := range d.ings.GetStore().List() {
		if i, ok := x.(*networkingv1.Ingress); ok {
			o.Ingresses = append(o.Ingresses, i)
		}
	}
	return o
}

func (d *Discovery) rebuild() {
	s := Build(d.Objects(), d.cfg.Options)
	d.mu.Lock()
	d.snap = s
	d.mu.Unlock()
	if d.cfg.OnUpdate != nil {
		d.cfg.OnUpdate(s)
	}
}

// ListObjects reads the objects once through plain list calls, for one-shot commands
// (kube check, kube lint live) that need no watch.
func ListObjects(ctx context.Context, c Reader, namespace, selector string) (Objects, error) {
	var o Objects
	list := func(r schema.GroupVersionResource, ns string, opts metav1.ListOptions) (runtime.Object, error) {
		l, err := c.List(ctx, r, ns, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", r.Resource, err)
		}
		return l, nil
	}
	l, err := list(Services, namespace, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return o, err
	}
	svcs, ok := l.(*corev1.ServiceList)
	if !ok {
		return o, fmt.Errorf("list services: got %T", l)
	}
	for i := range svcs.Items {
		o.Services = append(o.Services, &svcs.Items[i])
	}
	if l, err = list(EndpointSlices, namespace, metav1.ListOptions{}); err != nil {
		return o, err
	}
	sl, ok := l.(*discoveryv1.EndpointSliceList)
	if !ok {
		return o, fmt.Errorf("list endpointslices: got %T", l)
	}
	for i := range sl.Items {
		o.EndpointSlices = append(o.EndpointSlices, &sl.Items[i])
	}
	if l, err = list(Pods, namespace, metav1.ListOptions{}); err != nil {
		return o, err
	}
	pods, ok := l.(*corev1.PodList)
	if !ok {
		return o, fmt.Errorf("list pods: got %T", l)
	}
	for i := range pods.Items {
		o.Pods = append(o.Pods, &pods.Items[i])
	}
	if l, err = list(Nodes, "", metav1.ListOptions{}); err != nil {
		return o, err
	}
	nodes, ok := l.(*corev1.NodeList)
	if !ok {
		return o, fmt.Errorf("list nodes: got %T", l)
	}
	for i := range nodes.Items {
		o.Nodes = append(o.Nodes, &nodes.Items[i])
	}
	if l, err = list(Ingresses, namespace, metav1.ListOptions{}); err != nil {
		return o, err
	}
	ings, ok := l.(*networkingv1.IngressList)
	if !ok {
		return o, fmt.Errorf("list ingresses: got %T", l)
	}
	for i := range ings.Items {
		o.Ingresses = append(o.Ingresses, &ings.Items[i])
	}
	return o, nil
}

// ListNamespaces lists the cluster's Namespaces (lint's production-namespace check).
// The API server's error is wrapped, so apierrors.IsForbidden tells a missing permission.
func ListNamespaces(ctx context.Context, c Reader) ([]*corev1.Namespace, error) {
	l, err := c.List(ctx, Namespaces, "", metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	nss, ok := l.(*corev1.NamespaceList)
	if !ok {
		return nil, fmt.Errorf("list namespaces: got %T", l)
	}
	out := make([]*corev1.Namespace, len(nss.Items))
	for i := range nss.Items {
		out[i] = &nss.Items[i]
	}
	return out, nil
}
