package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes a node's state as Prometheus metrics, read at scrape time.
type collector struct {
	n                                            *Node
	members, leader, epoch, connected, published *prometheus.Desc
	buffered, dropped, lag                       *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns a Prometheus collector of the node's cluster metrics:
// portpatrol_cluster_members{location}, portpatrol_cluster_leader (1 when this node
// leads), portpatrol_cluster_epoch, portpatrol_cluster_connected,
// portpatrol_cluster_results_published_total, portpatrol_cluster_results_buffered,
// portpatrol_cluster_results_dropped_total and portpatrol_cluster_stream_lag (on the
// leader, else 0). Register it once.
func (n *Node) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("portpatrol_cluster_"+name, help, labels, nil)
	}
	return &collector{n: n,
		members:   d("members", "Live cluster members seen by this node, by location.", "location"),
		leader:    d("leader", "1 when this node is the alerting leader, else 0."),
		epoch:     d("epoch", "Version of this node's member view; it increments on every membership change."),
		connected: d("connected", "1 when connected to NATS, else 0."),
		published: d("results_published_total", "Results the stream acknowledged."),
		buffered:  d("results_buffered", "Results held locally until NATS is reachable."),
		dropped:   d("results_dropped_total", "Results dropped because the local buffer was full."),
		lag:       d("stream_lag", "Results not yet acknowledged by the alerting consumer (on the leader, else 0)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.leader, c.epoch, c.connected, c.published,
		c.buffered, c.dropped, c.lag} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	n.mu.Lock()
	view, leading, epoch, lag := n.view, n.leading, n.epoch, n.lag
	n.mu.Unlock()
	counts := map[string]int{}
	for _, m := range view {
		counts[m.Location]++
	}
	for loc, k := range counts {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(k), loc)
	}
	if !leading {
		lag = 0
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(c.leader, b2f(leading))
	gauge(c.epoch, float64(epoch))
	gauge(c.connected, b2f(n.Connected()))
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(n.published.Load()))
	gauge(c.buffered, float64(n.bufLen()))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n.dropped.Load()))
	gauge(c.lag, float64(lag))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
