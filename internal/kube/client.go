package kube

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The resources discovery and lint read. Nodes and Namespaces are cluster-scoped; the others are listed in one
// namespace or, with an empty namespace, in all. They are plain values, not a type of
// this package, so that an implementation of Reader need not import it.
var (
	Services       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	EndpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	Pods           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	Nodes          = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	Ingresses      = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	Namespaces     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Reader lists and watches the resources discovery reads. List returns the resource's
// typed list (*corev1.ServiceList for Services…); Watch streams its typed objects.
type Reader interface {
	List(ctx context.Context, r schema.GroupVersionResource, namespace string, opts metav1.ListOptions) (runtime.Object, error)
	Watch(ctx context.Context, r schema.GroupVersionResource, namespace string, opts metav1.ListOptions) (watch.Interface, error)
}

// Leases reads and writes the coordination.k8s.io Lease leader election holds. Errors
// are the API server's (*errors.StatusError), so apierrors.IsNotFound and IsConflict
// tell the cases apart.
type Leases interface {
	GetLease(ctx context.Context, namespace, name string) (*coordinationv1.Lease, error)
	CreateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error)
	UpdateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error)
}

// API is everything portpatrol asks of a cluster: discovery's reads and the leader's
// Lease. *Client implements it against an API server.
type API interface {
	Reader
	Leases
}

var _ API = (*Client)(nil)

// Client talks to an API server through REST clients of only the API groups portpatrol
// uses (core/v1, discovery.k8s.io/v1, networking.k8s.io/v1, coordination.k8s.io/v1).
// client-go's Clientset would link and register every group of Kubernetes, which
// doubled the binary and its start-up time. A Client is safe for concurrent use.
type Client struct {
	core, discovery, networking, coordination *rest.RESTClient
	params                                    runtime.ParameterCodec
}

// NewClient connects to Kubernetes: through the kubeconfig file and context when given,
// else through $KUBECONFIG or ~/.kube/config, else — inside a pod — through the service
// account (in-cluster config).
func NewClient(kubeconfig, context string) (*Client, *rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes config: %w", err)
	}
	cfg.UserAgent = "portpatrol"
	c, err := NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

// NewForConfig returns a Client for cfg. The scheme of the four groups is built here,
// not at package initialisation, so that commands which never talk to a cluster do not
// pay for it.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	sch := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme, coordinationv1.AddToScheme,
	} {
		if err := add(sch); err != nil {
			return nil, fmt.Errorf("kubernetes client: scheme: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(sch)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	group := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		if c.ContentType == "" {
			// Built-in types speak protobuf: smaller and cheaper to decode than JSON.
			c.ContentType = runtime.ContentTypeProtobuf
			c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		}
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientForConfigAndClient(c, hc)
	}
	k := &Client{params: runtime.NewParameterCodec(sch)}
	for _, g := range []struct {
		dst  **rest.RESTClient
		gv   schema.GroupVersion
		path string
	}{
		{&k.core, corev1.SchemeGroupVersion, "/api"},
		{&k.discovery, discoveryv1.SchemeGroupVersion, "/apis"},
		{&k.networking, networkingv1.SchemeGroupVersion, "/apis"},
		{&k.coordination, coordinationv1.SchemeGroupVersion, "/apis"},
	} {
		rc, err := group(g.gv, g.path)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %s: %w", g.gv, err)
		}
		*g.dst = rc
	}
	return k, nil
}

// resource says where r lives and which list type holds it.
func (c *Client) resource(r schema.GroupVersionResource) (rc *rest.RESTClient, namespaced bool, list runtime.Object, err error) {
	switch r {
	case Services:
		return c.core, true, &corev1.ServiceList{}, nil
	case Pods:
		return c.core, true, &corev1.PodList{}, nil
	case Nodes:
		return c.core, false, &corev1.NodeList{}, nil
	case Namespaces:
		return c.core, false, &corev1.NamespaceList{}, nil
	case EndpointSlices:
		return c.discovery, true, &discoveryv1.EndpointSliceList{}, nil
	case Ingresses:
		return c.networking, true, &networkingv1.IngressList{}, nil
	}
	return nil, false, nil, fmt.Errorf("kubernetes client: unknown resource %s", r)
}

// List implements Reader.
func (c *Client) List(ctx context.Context, r schema.GroupVersionResource, namespace string, opts metav1.ListOptions) (runtime.Object, error) {
	rc, namespaced, list, err := c.resource(r)
	if err != nil {
		return nil, err
	}
	err = rc.Get().
		NamespaceIfScoped(namespace, namespaced && namespace != "").
		Resource(r.Resource).
		VersionedParams(&opts, c.params).
		Timeout(timeoutOf(opts)).
		Do(ctx).
		Into(list)
	if err != nil {
		return nil, err
	}
	return list, nil
}

// Watch implements Reader.
func (c *Client) Watch(ctx context.Context, r schema.GroupVersionResource, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	rc, namespaced, _, err := c.resource(r)
	if err != nil {
		return nil, err
	}
	opts.Watch = true
	return rc.Get().
		NamespaceIfScoped(namespace, namespaced && namespace != "").
		Resource(r.Resource).
		VersionedParams(&opts, c.params).
		Timeout(timeoutOf(opts)).
		Watch(ctx)
}

func timeoutOf(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}

// GetLease implements Leases.
func (c *Client) GetLease(ctx context.Context, namespace, name string) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := c.coordination.Get().Namespace(namespace).Resource("leases").Name(name).
		VersionedParams(&metav1.GetOptions{}, c.params).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateLease implements Leases.
func (c *Client) CreateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := c.coordination.Post().Namespace(l.Namespace).Resource("leases").
		VersionedParams(&metav1.CreateOptions{}, c.params).Body(l).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateLease implements Leases.
func (c *Client) UpdateLease(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := c.coordination.Put().Namespace(l.Namespace).Resource("leases").Name(l.Name).
		VersionedParams(&metav1.UpdateOptions{}, c.params).Body(l).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}
