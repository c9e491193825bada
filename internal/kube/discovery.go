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
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClient connects to Kubernetes: through the kubeconfig file and context when given,
// else through $KUBECONFIG or ~/.kube/config, else — inside a pod — through the service
// account (in-cluster config).
func NewClient(kubeconfig, context string) (kubernetes.Interface, *rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes config: %w", err)
	}
	cfg.UserAgent = "portpatrol"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, cfg, nil
}

// DiscoveryConfig configures a Discovery. The zero value of every field but Client
// means: all namespaces, every Service, no periodic resync, 200ms debounce.
type DiscoveryConfig struct {
	Client kubernetes.Interface
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
	factory  informers.SharedInformerFactory
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
	f := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.Resync, informers.WithNamespace(cfg.Namespace))
	d := &Discovery{
		cfg:      cfg,
		factory:  f,
		selector: sel,
		kick:     make(chan struct{}, 1),
		synced:   make(chan struct{}),
	}
	// Every informer is registered before the factory starts: one registered later
	// would never run.
	d.svcs = f.Core().V1().Services().Informer()
	d.slices = f.Discovery().V1().EndpointSlices().Informer()
	d.pods = f.Core().V1().Pods().Informer()
	d.nodes = f.Core().V1().Nodes().Informer()
	d.ings = f.Networking().V1().Ingresses().Informer()
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
	d.factory.Start(ctx.Done())
	defer d.factory.Shutdown()
	for typ, ok := range d.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kube discovery: cache of %v did not sync", typ)
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
func ListObjects(ctx context.Context, c kubernetes.Interface, namespace, selector string) (Objects, error) {
	var o Objects
	svcs, err := c.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return o, fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		o.Services = append(o.Services, &svcs.Items[i])
	}
	sl, err := c.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, fmt.Errorf("list endpointslices: %w", err)
	}
	for i := range sl.Items {
		o.EndpointSlices = append(o.EndpointSlices, &sl.Items[i])
	}
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		o.Pods = append(o.Pods, &pods.Items[i])
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		o.Nodes = append(o.Nodes, &nodes.Items[i])
	}
	ings, err := c.NetworkingV1().Ingresses(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, fmt.Errorf("list ingresses: %w", err)
	}
	for i := range ings.Items {
		o.Ingresses = append(o.Ingresses, &ings.Items[i])
	}
	return o, nil
}
