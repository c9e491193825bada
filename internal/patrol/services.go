package patrol

import (
	"slices"
	"strings"
	"sync"
)

// Service is one well-known service port: what usually listens there, whether it must
// stay off public addresses, and which probe speaks it. The zero value is no service.
// Services are values; the slices they carry are copies, safe to keep and modify.
type Service struct {
	// Name is the service's short lower-case name, its IANA name where that is the
	// usual one: "redis", "postgresql", "domain". Names are unique per protocol.
	Name string
	// Aliases are other names ServiceByName knows the service by: "postgres",
	// "mariadb", "dns".
	Aliases []string
	// Port is the port number; Proto is "tcp" or "udp".
	Port  uint16
	Proto string
	// Desc is the human name messages use: "Redis Sentinel", "MySQL/MariaDB". It is
	// the Name where the table has nothing better.
	Desc string
	// Internal marks a service that must never be bound to a public address: data
	// stores, caches, brokers, cluster and control-plane ports, most of them without
	// authentication by default.
	Internal bool
	// Scheme is the target scheme (a key of Schemes) whose probe speaks the service,
	// or "" when no probe does.
	Scheme string
	// Commands are the process names (comm, as ss -p shows it) the service runs as.
	// Only a service's main port carries them, so a process found listening on any
	// port is named after its service's main entry.
	Commands []string
}

// Services returns every well-known service, most commonly open first: the order is
// the scanner's ranking of TCP ports (see the table).
func Services() []Service {
	out := make([]Service, len(services))
	for i := range services {
		out[i] = services[i].normal()
	}
	return out
}

// ServiceByPort returns the well-known service on port for proto ("tcp" or "udp",
// any case).
func ServiceByPort(proto string, port uint16) (Service, bool) {
	proto = strings.ToLower(proto)
	for i := range services {
		s := &services[i]
		if s.Port == port && s.proto() == proto {
			return s.normal(), true
		}
	}
	return Service{}, false
}

// ServiceByName returns the service known by name (a Name or one of its Aliases, any
// case). A name both TCP and UDP use names the TCP service.
func ServiceByName(name string) (Service, bool) {
	for i := range services {
		s := &services[i]
		if strings.EqualFold(s.Name, name) || slices.ContainsFunc(s.Aliases, func(a string) bool { return strings.EqualFold(a, name) }) {
			return s.normal(), true
		}
	}
	return Service{}, false
}

// ServiceByCommand returns the service whose process is named comm (as ss -p shows
// it): the main port of the service that runs as comm.
func ServiceByCommand(comm string) (Service, bool) {
	if comm == "" {
		return Service{}, false
	}
	for i := range services {
		if slices.Contains(services[i].Commands, comm) {
			return services[i].normal(), true
		}
	}
	return Service{}, false
}

// DefaultPort returns the port a target of scheme (or one of its aliases) uses when
// it names none: the port of the service named like the scheme and spoken by its
// probe (redis → 6379, dns → 53). It is 0 for schemes that need a port (tcp, tls, udp,
// grpc) and for unknown schemes.
func DefaultPort(scheme string) int {
	if p, ok := defaultPorts()[scheme]; ok {
		return p
	}
	return defaultPort(scheme)
}

// defaultPorts holds DefaultPort of every scheme, scheme alias, and name and alias of
// the table, worked out once: parsing a million targets looked each scheme up in
// the whole table.
var defaultPorts = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	add := func(name string) {
		for _, k := range []string{name, strings.ToLower(name)} {
			m[k] = defaultPort(k)
		}
	}
	for i := range services {
		add(services[i].Name)
		add(services[i].Scheme)
		for _, a := range services[i].Aliases {
			add(a)
		}
	}
	for k := range schemeAliases {
		add(k)
	}
	for k := range Schemes {
		add(k)
	}
	return m
})

func defaultPort(scheme string) int {
	scheme = strings.ToLower(scheme)
	if a, ok := schemeAliases[scheme]; ok {
		scheme = a
	}
	if s, ok := ServiceByName(scheme); ok && s.Scheme == scheme {
		return int(s.Port)
	}
	return 0
}

// proto is the entry's protocol: the table leaves it empty for TCP, the common case.
func (s *Service) proto() string {
	if s.Proto == "" {
		return "tcp"
	}
	return s.Proto
}

// normal returns a copy of a table entry as callers see it: protocol and description
// filled in, slices of its own.
func (s *Service) normal() Service {
	c := *s
	c.Proto = s.proto()
	if c.Desc == "" {
		c.Desc = c.Name
	}
	c.Aliases = slices.Clone(s.Aliases)
	c.Commands = slices.Clone(s.Commands)
	return c
}

// services is portpatrol's one table of well-known services. Every package that needs
// to name a port, judge whether it may face the world, or pick the probe that speaks
// it reads this table; none keeps its own.
//
// Its order is the scanner's ranking (scan.Top): a judgement of where a TCP port is
// likely to be open on the servers, workstations, clusters and network devices
// portpatrol watches. First the doors of the internet (web, mail, remote login, file
// sharing), then databases, caches and brokers, cluster and observability ports, then
// enterprise, media and device services, and last the rest of the privileged range
// 1–1023, where system services live. Names are the service's common name, or its IANA
// name where that is the usual one. Proto is left empty for TCP.
//
// Internal entries are the union of what the exposure audit, the host watch and kube
// lint each used to call internal: a service one of them judged unfit for a public
// address is judged so by all.
var services = []Service{
	// Doors of the internet and of every office network.
	{Port: 80, Name: "http", Scheme: "http"}, {Port: 443, Name: "https", Scheme: "https"},
	{Port: 22, Name: "ssh", Scheme: "ssh"}, {Port: 21, Name: "ftp"},
	{Port: 25, Name: "smtp", Scheme: "smtp"}, {Port: 23, Name: "telnet"},
	{Port: 53, Name: "domain", Aliases: []string{"dns"}, Scheme: "dns"},
	{Port: 3389, Name: "ms-wbt-server"}, {Port: 110, Name: "pop3"}, {Port: 143, Name: "imap"},
	{Port: 445, Name: "microsoft-ds"}, {Port: 139, Name: "netbios-ssn"}, {Port: 135, Name: "msrpc"},
	{Port: 8080, Name: "http-proxy", Scheme: "http"},
	{Port: 3306, Name: "mysql", Aliases: []string{"mariadb"}, Desc: "MySQL/MariaDB", Internal: true, Scheme: "mysql", Commands: []string{"mysqld", "mariadbd"}},
	{Port: 993, Name: "imaps", Scheme: "tls"}, {Port: 995, Name: "pop3s", Scheme: "tls"},
	{Port: 587, Name: "submission", Scheme: "smtp"}, {Port: 465, Name: "smtps", Scheme: "tls"},
	{Port: 111, Name: "rpcbind"}, {Port: 5900, Name: "vnc"},
	{Port: 8443, Name: "https-alt", Scheme: "https"}, {Port: 1723, Name: "pptp"},
	{Port: 5432, Name: "postgresql", Aliases: []string{"postgres"}, Desc: "PostgreSQL", Internal: true, Scheme: "postgres", Commands: []string{"postgres", "postmaster"}},
	{Port: 6379, Name: "redis", Desc: "Redis", Internal: true, Scheme: "redis", Commands: []string{"redis-server", "keydb-server", "dragonfly"}},
	{Port: 8000, Name: "http-alt", Scheme: "http"}, {Port: 8888, Name: "http-alt2", Scheme: "http"},
	{Port: 3000, Name: "grafana", Scheme: "http"}, {Port: 8081, Name: "http-alt3", Scheme: "http"},
	{Port: 2049, Name: "nfs"}, {Port: 1433, Name: "ms-sql-s"}, {Port: 1521, Name: "oracle"},
	{Port: 389, Name: "ldap"}, {Port: 636, Name: "ldaps", Scheme: "tls"},
	{Port: 88, Name: "kerberos"}, {Port: 5985, Name: "wsman"}, {Port: 5986, Name: "wsmans"},
	{Port: 631, Name: "ipp"}, {Port: 548, Name: "afp"}, {Port: 515, Name: "printer"},
	{Port: 9100, Name: "jetdirect", Scheme: "http"}, {Port: 179, Name: "bgp"},
	{Port: 161, Name: "snmp"}, {Port: 873, Name: "rsync"}, {Port: 990, Name: "ftps"},
	{Port: 20, Name: "ftp-data"}, {Port: 113, Name: "ident"}, {Port: 119, Name: "nntp"},
	{Port: 1080, Name: "socks"}, {Port: 3128, Name: "squid-http"},
	{Port: 8008, Name: "http-alt4", Scheme: "http"}, {Port: 10000, Name: "webmin"},
	{Port: 2222, Name: "ssh-alt", Scheme: "ssh"}, {Port: 5000, Name: "upnp"},
	{Port: 5001, Name: "commplex-link"},
	// 9000 is PHP-FPM's FastCGI port, and also ClickHouse's native port (and MinIO's,
	// SonarQube's, Portainer's). Named for PHP-FPM: an exposed FastCGI port lets anyone
	// run code on the host, the worst of the candidates, while ClickHouse is still named
	// for what it is by its process name (see 8123). Both are internal either way.
	{Port: 9000, Name: "php-fpm", Desc: "PHP-FPM (FastCGI)", Internal: true},
	{Port: 9090, Name: "prometheus", Scheme: "http"},
	{Port: 27017, Name: "mongodb", Aliases: []string{"mongo"}, Desc: "MongoDB", Internal: true, Commands: []string{"mongod", "mongos"}},
	{Port: 11211, Name: "memcache", Aliases: []string{"memcached"}, Desc: "memcached", Internal: true, Scheme: "memcached", Commands: []string{"memcached"}},
	{Port: 9200, Name: "elasticsearch", Aliases: []string{"opensearch"}, Desc: "Elasticsearch/OpenSearch", Internal: true},
	{Port: 5672, Name: "amqp", Aliases: []string{"rabbitmq"}, Desc: "AMQP (RabbitMQ)", Internal: true, Scheme: "amqp"},
	{Port: 1883, Name: "mqtt", Desc: "MQTT", Internal: true, Scheme: "mqtt", Commands: []string{"mosquitto"}},
	{Port: 4222, Name: "nats", Desc: "NATS", Internal: true, Scheme: "nats", Commands: []string{"nats-server"}},
	{Port: 2375, Name: "docker", Desc: "Docker API", Internal: true, Commands: []string{"dockerd"}},
	{Port: 2376, Name: "docker-tls", Desc: "Docker API (TLS)", Internal: true},
	{Port: 6443, Name: "kubernetes-api", Scheme: "https"},
	{Port: 10250, Name: "kubelet", Desc: "kubelet", Internal: true, Scheme: "https", Commands: []string{"kubelet"}},
	{Port: 2379, Name: "etcd-client", Aliases: []string{"etcd"}, Desc: "etcd", Internal: true, Commands: []string{"etcd"}},
	{Port: 2380, Name: "etcd-server", Desc: "etcd peer", Internal: true},
	{Port: 9092, Name: "kafka", Desc: "Kafka", Internal: true},
	{Port: 2181, Name: "zookeeper", Desc: "ZooKeeper", Internal: true},
	{Port: 8500, Name: "consul", Desc: "Consul", Internal: true, Commands: []string{"consul"}},
	{Port: 8200, Name: "vault"}, {Port: 5601, Name: "kibana"},
	{Port: 9300, Name: "elasticsearch-transport", Desc: "Elasticsearch/OpenSearch transport", Internal: true},
	{Port: 15672, Name: "rabbitmq-management", Desc: "RabbitMQ management", Internal: true},
	{Port: 8883, Name: "secure-mqtt", Scheme: "tls"},
	{Port: 5984, Name: "couchdb", Desc: "CouchDB", Internal: true},
	{Port: 7474, Name: "neo4j"}, {Port: 7687, Name: "neo4j-bolt"},
	{Port: 8086, Name: "influxdb", Desc: "InfluxDB", Internal: true, Commands: []string{"influxd"}},
	{Port: 9042, Name: "cassandra", Desc: "Cassandra", Internal: true},
	{Port: 6380, Name: "redis-alt", Desc: "Redis", Internal: true, Scheme: "redis"},
	{Port: 26379, Name: "redis-sentinel", Desc: "Redis Sentinel", Internal: true, Scheme: "redis"},
	{Port: 6432, Name: "pgbouncer", Desc: "PgBouncer", Internal: true, Scheme: "postgres"},
	{Port: 5433, Name: "postgresql-alt", Scheme: "postgres"},
	{Port: 3307, Name: "mysql-alt", Scheme: "mysql"},
	{Port: 33060, Name: "mysqlx", Desc: "MySQL X Protocol", Internal: true},
	{Port: 1434, Name: "ms-sql-m"}, {Port: 50000, Name: "db2"}, {Port: 8009, Name: "ajp13"},
	{Port: 8082, Name: "http-alt5"}, {Port: 8083, Name: "http-alt6"}, {Port: 8084, Name: "http-alt7"},
	{Port: 8085, Name: "http-alt8"}, {Port: 8088, Name: "radan-http"}, {Port: 8089, Name: "splunkd"},
	{Port: 8090, Name: "http-alt9"}, {Port: 8180, Name: "http-alt10"},
	{Port: 8181, Name: "http-alt11"}, {Port: 9443, Name: "https-alt2", Scheme: "https"},
	{Port: 4443, Name: "https-alt3", Scheme: "https"}, {Port: 10443, Name: "https-alt4"},
	{Port: 7001, Name: "weblogic"}, {Port: 7002, Name: "weblogic-ssl"},
	{Port: 4848, Name: "glassfish-admin"}, {Port: 9990, Name: "wildfly-admin"},
	{Port: 1099, Name: "rmiregistry"}, {Port: 9999, Name: "abyss"}, {Port: 5555, Name: "adb"},
	{Port: 4444, Name: "krb524"}, {Port: 6000, Name: "x11"}, {Port: 5901, Name: "vnc-1"},
	{Port: 5902, Name: "vnc-2"}, {Port: 5800, Name: "vnc-http"}, {Port: 3690, Name: "svn"},
	{Port: 9418, Name: "git"}, {Port: 6667, Name: "irc"}, {Port: 6697, Name: "ircs"},
	{Port: 5222, Name: "xmpp-client"}, {Port: 5269, Name: "xmpp-server"}, {Port: 5060, Name: "sip"},
	{Port: 5061, Name: "sips"}, {Port: 554, Name: "rtsp"}, {Port: 1935, Name: "rtmp"},
	{Port: 3478, Name: "stun"}, {Port: 1194, Name: "openvpn"}, {Port: 1701, Name: "l2tp"},
	{Port: 500, Name: "isakmp"}, {Port: 3268, Name: "globalcatldap"},
	{Port: 3269, Name: "globalcatldapssl"}, {Port: 464, Name: "kpasswd"},
	{Port: 593, Name: "http-rpc-epmap"}, {Port: 49152, Name: "msrpc-dyn0"},
	{Port: 49153, Name: "msrpc-dyn1"}, {Port: 49154, Name: "msrpc-dyn2"},
	{Port: 49155, Name: "msrpc-dyn3"}, {Port: 49156, Name: "msrpc-dyn4"},
	{Port: 49157, Name: "msrpc-dyn5"}, {Port: 47001, Name: "winrm-http"}, {Port: 9389, Name: "adws"},
	{Port: 3260, Name: "iscsi"}, {Port: 902, Name: "vmware-auth"}, {Port: 912, Name: "vmware-authd"},
	{Port: 5480, Name: "vmware-vami"}, {Port: 7547, Name: "cwmp"}, {Port: 8291, Name: "winbox"},
	{Port: 1900, Name: "upnp-ssdp"}, {Port: 5357, Name: "wsdapi"}, {Port: 2869, Name: "icslap"},
	{Port: 62078, Name: "iphone-sync"}, {Port: 5353, Name: "mdns"},
	{Port: 3283, Name: "net-assistant"}, {Port: 5009, Name: "airport-admin"},

	// Monitoring, observability and configuration management.
	{Port: 9093, Name: "alertmanager", Scheme: "http"}, {Port: 9091, Name: "pushgateway"},
	{Port: 9115, Name: "blackbox-exporter", Scheme: "http"}, {Port: 3100, Name: "loki"},
	{Port: 9411, Name: "zipkin"}, {Port: 16686, Name: "jaeger-ui"},
	{Port: 14268, Name: "jaeger-collector"}, {Port: 14250, Name: "jaeger-grpc"},
	{Port: 4317, Name: "otlp-grpc"}, {Port: 4318, Name: "otlp-http"},
	{Port: 8125, Name: "statsd", Desc: "StatsD", Internal: true},
	{Port: 2003, Name: "graphite"}, {Port: 2004, Name: "graphite-pickle"},
	{Port: 8126, Name: "statsd-admin"}, {Port: 10050, Name: "zabbix-agent"},
	{Port: 10051, Name: "zabbix-trapper"}, {Port: 5666, Name: "nrpe"}, {Port: 5667, Name: "nsca"},
	{Port: 4949, Name: "munin"}, {Port: 8649, Name: "ganglia"}, {Port: 19999, Name: "netdata"},
	{Port: 8140, Name: "puppet"}, {Port: 4505, Name: "salt-publish"},
	{Port: 4506, Name: "salt-request"}, {Port: 5044, Name: "beats"}, {Port: 9600, Name: "logstash"},
	{Port: 24224, Name: "fluentd"}, {Port: 6514, Name: "syslog-tls"},
	{Port: 601, Name: "syslog-conn"}, {Port: 514, Name: "shell"}, {Port: 9102, Name: "bacula-fd"},
	{Port: 9101, Name: "bacula-dir"}, {Port: 9103, Name: "bacula-sd"}, {Port: 8834, Name: "nessus"},
	{Port: 9392, Name: "openvas"}, {Port: 3493, Name: "nut"},

	// Clusters: Kubernetes, service meshes, HashiCorp, container platforms.
	{Port: 10255, Name: "kubelet-ro"}, {Port: 10256, Name: "kube-proxy-health"},
	{Port: 10257, Name: "kube-controller-manager"}, {Port: 10259, Name: "kube-scheduler"},
	{Port: 10249, Name: "kube-proxy-metrics"}, {Port: 10248, Name: "kubelet-healthz"},
	{Port: 2381, Name: "etcd-metrics"}, {Port: 9153, Name: "coredns-metrics"},
	{Port: 4194, Name: "cadvisor"}, {Port: 9099, Name: "calico-felix"},
	{Port: 5473, Name: "calico-typha"}, {Port: 6783, Name: "weave"}, {Port: 7946, Name: "memberlist"},
	{Port: 8472, Name: "vxlan-flannel"}, {Port: 15000, Name: "envoy-admin-istio"},
	{Port: 15001, Name: "istio-outbound"}, {Port: 15006, Name: "istio-inbound"},
	{Port: 15010, Name: "istiod-grpc"}, {Port: 15012, Name: "istiod-xds"},
	{Port: 15014, Name: "istiod-monitoring"}, {Port: 15017, Name: "istiod-webhook"},
	{Port: 15020, Name: "istio-merged-metrics"}, {Port: 15021, Name: "istio-health"},
	{Port: 15090, Name: "envoy-prometheus"}, {Port: 9901, Name: "envoy-admin"},
	{Port: 8001, Name: "kubectl-proxy"}, {Port: 8600, Name: "consul-dns"},
	{Port: 8300, Name: "consul-server", Desc: "Consul server RPC", Internal: true},
	{Port: 8301, Name: "consul-serf-lan", Desc: "Consul Serf LAN", Internal: true},
	{Port: 8302, Name: "consul-serf-wan"}, {Port: 8501, Name: "consul-https"},
	{Port: 8502, Name: "consul-grpc"}, {Port: 4646, Name: "nomad-http"},
	{Port: 4647, Name: "nomad-rpc"}, {Port: 4648, Name: "nomad-serf"},
	{Port: 8201, Name: "vault-cluster"}, {Port: 2377, Name: "docker-swarm"},
	{Port: 5005, Name: "jdwp"}, {Port: 5050, Name: "mesos-master"}, {Port: 5051, Name: "mesos-agent"},
	{Port: 6781, Name: "weave-metrics"}, {Port: 9796, Name: "rancher-exporter"},
	{Port: 6444, Name: "k3s-api"}, {Port: 9345, Name: "rke2-supervisor"},
	{Port: 16443, Name: "microk8s-api"}, {Port: 30000, Name: "nodeport-first"},
	{Port: 32767, Name: "nodeport-last"},

	// Brokers, streaming and data platforms.
	{Port: 6222, Name: "nats-cluster", Desc: "NATS cluster", Internal: true},
	{Port: 8222, Name: "nats-monitor", Desc: "NATS monitoring", Internal: true},
	{Port: 7422, Name: "nats-leafnode"}, {Port: 5671, Name: "amqps", Scheme: "tls"},
	{Port: 4369, Name: "epmd", Desc: "Erlang port mapper (epmd)", Internal: true, Commands: []string{"epmd"}},
	{Port: 25672, Name: "rabbitmq-dist", Desc: "RabbitMQ distribution", Internal: true},
	{Port: 61613, Name: "stomp"}, {Port: 61614, Name: "stomp-ssl"}, {Port: 61616, Name: "activemq"},
	{Port: 8161, Name: "activemq-web"}, {Port: 6650, Name: "pulsar"},
	{Port: 6651, Name: "pulsar-tls"}, {Port: 9094, Name: "kafka-alt"},
	{Port: 29092, Name: "kafka-docker"}, {Port: 9644, Name: "redpanda-admin"},
	{Port: 2888, Name: "zookeeper-peer"}, {Port: 3888, Name: "zookeeper-election"},
	{Port: 5701, Name: "hazelcast"},
	{Port: 11210, Name: "couchbase-data", Aliases: []string{"couchbase"}, Desc: "Couchbase", Internal: true},
	{Port: 8091, Name: "couchbase-admin"}, {Port: 8092, Name: "couchbase-views"},
	{Port: 8093, Name: "couchbase-query"}, {Port: 18091, Name: "couchbase-admin-ssl"},
	{Port: 7000, Name: "cassandra-internode", Desc: "Cassandra internode", Internal: true},
	{Port: 7199, Name: "cassandra-jmx", Desc: "Cassandra JMX", Internal: true},
	{Port: 9160, Name: "cassandra-thrift"}, {Port: 8087, Name: "riak-pb"},
	{Port: 8098, Name: "riak-http"}, {Port: 8529, Name: "arangodb"}, {Port: 28015, Name: "rethinkdb"},
	{Port: 29015, Name: "rethinkdb-cluster"}, {Port: 7473, Name: "neo4j-https"},
	{Port: 3050, Name: "firebird"}, {Port: 1526, Name: "oracle-alt"},
	{Port: 1522, Name: "oracle-listener-alt"}, {Port: 2484, Name: "oracle-tcps"},
	{Port: 5500, Name: "oracle-em"}, {Port: 4567, Name: "galera"}, {Port: 4568, Name: "galera-ist"},
	{Port: 8123, Name: "clickhouse-http", Aliases: []string{"clickhouse"}, Desc: "ClickHouse", Internal: true, Commands: []string{"clickhouse-serv", "clickhouse"}},
	{Port: 9004, Name: "clickhouse-mysql", Scheme: "mysql"}, {Port: 8812, Name: "questdb-pg"},
	{Port: 26257, Name: "cockroachdb", Aliases: []string{"cockroach"}, Desc: "CockroachDB", Internal: true, Scheme: "postgres"},
	{Port: 4000, Name: "tidb", Scheme: "mysql"}, {Port: 7050, Name: "sybase"},
	{Port: 1583, Name: "pervasive-sql"}, {Port: 3351, Name: "btrieve"}, {Port: 1527, Name: "derby"},
	{Port: 9001, Name: "tor-orport"},
	{Port: 8983, Name: "solr", Desc: "Solr", Internal: true},
	{Port: 7700, Name: "meilisearch"}, {Port: 7280, Name: "quickwit"},
	{Port: 8108, Name: "typesense"}, {Port: 6333, Name: "qdrant"}, {Port: 19530, Name: "milvus"},
	{Port: 11222, Name: "infinispan"},

	// Big data.
	{Port: 4040, Name: "spark-ui"}, {Port: 7077, Name: "spark-master"},
	{Port: 8042, Name: "yarn-nodemanager"}, {Port: 8032, Name: "yarn-rm"},
	{Port: 8030, Name: "yarn-scheduler"}, {Port: 8031, Name: "yarn-tracker"},
	{Port: 8033, Name: "yarn-admin"}, {Port: 19888, Name: "mr-jobhistory"},
	{Port: 50070, Name: "hdfs-namenode-http"}, {Port: 9870, Name: "hdfs-namenode-http3"},
	{Port: 8020, Name: "hdfs-namenode"}, {Port: 50010, Name: "hdfs-datanode"},
	{Port: 9864, Name: "hdfs-datanode-http"}, {Port: 9866, Name: "hdfs-datanode3"},
	{Port: 16010, Name: "hbase-master-ui"}, {Port: 16000, Name: "hbase-master"},
	{Port: 16020, Name: "hbase-regionserver"}, {Port: 9083, Name: "hive-metastore"},
	{Port: 10002, Name: "hive-ui"}, {Port: 8998, Name: "livy"},
	{Port: 7180, Name: "cloudera-manager"}, {Port: 18080, Name: "spark-history"},
	{Port: 8890, Name: "zeppelin"}, {Port: 8793, Name: "airflow-logs"},
	{Port: 6006, Name: "tensorboard"}, {Port: 8265, Name: "ray-dashboard"},
	{Port: 10001, Name: "ray-client"}, {Port: 8786, Name: "dask-scheduler"},
	{Port: 8787, Name: "dask-dashboard"},

	// Development servers and application frameworks.
	{Port: 3001, Name: "http-dev"}, {Port: 4200, Name: "angular-dev"}, {Port: 5173, Name: "vite-dev"},
	{Port: 8010, Name: "http-alt12"}, {Port: 8002, Name: "http-alt13"},
	{Port: 8003, Name: "http-alt14"}, {Port: 8004, Name: "http-alt15"},
	{Port: 8005, Name: "tomcat-shutdown"}, {Port: 8006, Name: "http-alt16"},
	{Port: 8007, Name: "http-alt17"}, {Port: 8099, Name: "http-alt18"},
	{Port: 8100, Name: "http-alt19"}, {Port: 8800, Name: "http-alt20"},
	{Port: 8880, Name: "cddbp-alt"}, {Port: 8899, Name: "http-alt21"},
	{Port: 9080, Name: "websphere-http"}, {Port: 9060, Name: "websphere-admin"},
	{Port: 9043, Name: "websphere-admin-ssl"}, {Port: 9081, Name: "http-alt22"},
	{Port: 7070, Name: "realserver"}, {Port: 7080, Name: "http-alt23"},
	{Port: 7443, Name: "https-alt5"}, {Port: 9009, Name: "pichat"}, {Port: 4001, Name: "newoak"},
	{Port: 5010, Name: "telelpathstart"}, {Port: 3030, Name: "http-dev2"}, {Port: 8069, Name: "odoo"},
	{Port: 8384, Name: "syncthing-gui"}, {Port: 22000, Name: "syncthing"},
	{Port: 9998, Name: "distinct32"}, {Port: 1337, Name: "waste"}, {Port: 8545, Name: "ethereum-rpc"},
	{Port: 8546, Name: "ethereum-ws"}, {Port: 30303, Name: "ethereum-p2p"},
	{Port: 8333, Name: "bitcoin"}, {Port: 18333, Name: "bitcoin-testnet"},
	{Port: 9735, Name: "lightning"}, {Port: 26656, Name: "tendermint-p2p"},
	{Port: 26657, Name: "tendermint-rpc"},

	// Remote administration, desktops and thin clients.
	{Port: 5938, Name: "teamviewer"}, {Port: 6129, Name: "dameware"}, {Port: 3390, Name: "rdp-alt"},
	{Port: 1494, Name: "citrix-ica"}, {Port: 2598, Name: "citrix-cgp"}, {Port: 4899, Name: "radmin"},
	{Port: 5631, Name: "pcanywheredata"}, {Port: 2179, Name: "vmrdp"}, {Port: 6001, Name: "x11-1"},
	{Port: 6002, Name: "x11-2"}, {Port: 6003, Name: "x11-3"}, {Port: 6004, Name: "x11-4"},
	{Port: 6005, Name: "x11-5"}, {Port: 5903, Name: "vnc-3"}, {Port: 5904, Name: "vnc-4"},
	{Port: 5905, Name: "vnc-5"}, {Port: 5906, Name: "vnc-6"}, {Port: 5910, Name: "vnc-10"},
	{Port: 5801, Name: "vnc-http-1"}, {Port: 5802, Name: "vnc-http-2"},
	{Port: 7100, Name: "font-service"}, {Port: 6112, Name: "dtspc"}, {Port: 830, Name: "netconf-ssh"},
	{Port: 2022, Name: "ssh-alt2"}, {Port: 2200, Name: "ssh-alt3"}, {Port: 22222, Name: "ssh-alt4"},
	{Port: 992, Name: "telnets"}, {Port: 513, Name: "login"}, {Port: 512, Name: "exec"},
	{Port: 543, Name: "klogin"}, {Port: 544, Name: "kshell"}, {Port: 2001, Name: "dc"},
	{Port: 2000, Name: "cisco-sccp"}, {Port: 4786, Name: "smart-install"},
	{Port: 1720, Name: "h323q931"}, {Port: 1812, Name: "radius"}, {Port: 1813, Name: "radius-acct"},
	{Port: 49, Name: "tacacs"}, {Port: 2601, Name: "zebra"}, {Port: 2602, Name: "ripd"},
	{Port: 2604, Name: "ospfd"}, {Port: 2605, Name: "bgpd"}, {Port: 646, Name: "ldp"},
	{Port: 639, Name: "msdp"}, {Port: 3784, Name: "bfd-control"},

	// Windows and enterprise directory services.
	{Port: 1801, Name: "msmq"}, {Port: 2103, Name: "zephyr-clt"}, {Port: 2105, Name: "eklogin"},
	{Port: 2107, Name: "msmq-mgmt"}, {Port: 3372, Name: "msdtc"}, {Port: 5722, Name: "dfsr"},
	{Port: 8530, Name: "wsus-http"}, {Port: 8531, Name: "wsus-https"}, {Port: 1270, Name: "opsmgr"},
	{Port: 3343, Name: "ms-cluster-net"}, {Port: 1025, Name: "blackjack"},
	{Port: 1026, Name: "win-rpc-1026"}, {Port: 1027, Name: "win-rpc-1027"},
	{Port: 1028, Name: "win-rpc-1028"}, {Port: 1029, Name: "ms-lsa"}, {Port: 1030, Name: "iad1"},
	{Port: 1031, Name: "iad2"}, {Port: 1110, Name: "nfsd-status"}, {Port: 2701, Name: "sms-rcinfo"},
	{Port: 2702, Name: "sms-xfer"}, {Port: 1352, Name: "lotusnotes"},
	{Port: 3052, Name: "powerchute"}, {Port: 8014, Name: "http-alt24"},
	{Port: 750, Name: "kerberos-iv"}, {Port: 749, Name: "kerberos-adm"},
	{Port: 754, Name: "krb-prop"},

	// Mail, news and messaging beyond the basics.
	{Port: 2525, Name: "smtp-alt", Scheme: "smtp"}, {Port: 24, Name: "priv-mail"},
	{Port: 106, Name: "pop3pw"}, {Port: 109, Name: "pop2"}, {Port: 220, Name: "imap3"},
	{Port: 366, Name: "odmr"}, {Port: 4190, Name: "sieve"}, {Port: 563, Name: "nntps"},
	{Port: 444, Name: "snpp"}, {Port: 5190, Name: "aol"}, {Port: 5280, Name: "xmpp-bosh"},
	{Port: 1863, Name: "msnp"}, {Port: 5298, Name: "presence"}, {Port: 7777, Name: "cbt"},
	{Port: 6668, Name: "irc-alt"}, {Port: 6665, Name: "irc-alt2"}, {Port: 6666, Name: "irc-alt3"},
	{Port: 6669, Name: "irc-alt4"}, {Port: 8067, Name: "irc-alt5"}, {Port: 6881, Name: "bittorrent"},
	{Port: 6346, Name: "gnutella"}, {Port: 4662, Name: "edonkey"}, {Port: 1214, Name: "kazaa"},

	// Storage, backup and file transfer.
	{Port: 20048, Name: "mountd"}, {Port: 4045, Name: "lockd"}, {Port: 10809, Name: "nbd"},
	{Port: 6789, Name: "ceph-mon"}, {Port: 3300, Name: "ceph-mon2"}, {Port: 6800, Name: "ceph-osd"},
	{Port: 7480, Name: "ceph-rgw"}, {Port: 989, Name: "ftps-data"}, {Port: 115, Name: "sftp"},
	{Port: 69, Name: "tftp"}, {Port: 2121, Name: "ftp-alt"}, {Port: 8021, Name: "ftp-proxy"},
	{Port: 10080, Name: "amanda"}, {Port: 3205, Name: "isns"}, {Port: 860, Name: "iscsi-alt"},
	{Port: 2048, Name: "dls-monitor"}, {Port: 5989, Name: "wbem-https"},
	{Port: 5988, Name: "wbem-http"}, {Port: 427, Name: "svrloc"},
	{Port: 1311, Name: "dell-openmanage"}, {Port: 623, Name: "ipmi"},
	{Port: 664, Name: "asf-secure-rmcp"}, {Port: 17988, Name: "ilo-vm"},
	{Port: 17990, Name: "ilo-remote-console"},

	// Media, VoIP, printing and devices.
	{Port: 1755, Name: "wms"}, {Port: 8554, Name: "rtsp-alt"}, {Port: 5004, Name: "rtp"},
	{Port: 3689, Name: "daap"}, {Port: 32400, Name: "plex"}, {Port: 8096, Name: "jellyfin"},
	{Port: 8920, Name: "jellyfin-https"}, {Port: 49000, Name: "fritzbox-tr064"},
	{Port: 6566, Name: "sane-port"}, {Port: 9220, Name: "hp-pdl-data"},
	{Port: 280, Name: "http-mgmt"}, {Port: 591, Name: "filemaker"}, {Port: 5080, Name: "onscreen"},
	{Port: 4070, Name: "tripe"}, {Port: 1719, Name: "h323gatestat"},
	{Port: 5062, Name: "localisation-access"}, {Port: 2427, Name: "mgcp"},
	{Port: 2727, Name: "mgcp-callagent"}, {Port: 4569, Name: "iax"},
	{Port: 5038, Name: "asterisk-ami"}, {Port: 25565, Name: "minecraft"},
	{Port: 27015, Name: "srcds"}, {Port: 27036, Name: "steam-streaming"}, {Port: 3074, Name: "xbox"},
	{Port: 3659, Name: "apple-sasl"}, {Port: 3031, Name: "eppc"},

	// Industrial control and building automation.
	{Port: 502, Name: "modbus"}, {Port: 102, Name: "iso-tsap"}, {Port: 20000, Name: "dnp3"},
	{Port: 44818, Name: "ethernet-ip"}, {Port: 47808, Name: "bacnet"}, {Port: 1911, Name: "fox"},
	{Port: 4911, Name: "fox-tls"}, {Port: 2404, Name: "iec-104"}, {Port: 789, Name: "redlion"},
	{Port: 1962, Name: "pcworx"}, {Port: 5094, Name: "hart-ip"}, {Port: 18245, Name: "ge-srtp"},
	{Port: 2455, Name: "codesys"}, {Port: 4840, Name: "opc-ua"},

	// Security tools, proxies and VPNs.
	{Port: 8118, Name: "privoxy"}, {Port: 9050, Name: "tor-socks"}, {Port: 9051, Name: "tor-control"},
	{Port: 9030, Name: "tor-dir"}, {Port: 3129, Name: "squid-alt"}, {Port: 4500, Name: "ipsec-nat-t"},
	{Port: 4433, Name: "https-alt6"}, {Port: 3780, Name: "nexpose"},
	{Port: 55553, Name: "metasploit-rpc"}, {Port: 9390, Name: "openvas-omp"},
	{Port: 12345, Name: "netbus"}, {Port: 31337, Name: "elite"},

	// Classic Unix services.
	{Port: 7, Name: "echo"}, {Port: 9, Name: "discard"}, {Port: 13, Name: "daytime"},
	{Port: 17, Name: "qotd"}, {Port: 19, Name: "chargen"}, {Port: 37, Name: "time"},
	{Port: 79, Name: "finger"}, {Port: 70, Name: "gopher"}, {Port: 43, Name: "whois"},
	{Port: 42, Name: "nameserver"}, {Port: 11, Name: "systat"}, {Port: 15, Name: "netstat"},
	{Port: 101, Name: "hostname"}, {Port: 105, Name: "csnet-ns"}, {Port: 107, Name: "rtelnet"},
	{Port: 117, Name: "uucp-path"}, {Port: 118, Name: "sqlserv"}, {Port: 123, Name: "ntp"},
	{Port: 137, Name: "netbios-ns"}, {Port: 138, Name: "netbios-dgm"}, {Port: 150, Name: "sql-net"},
	{Port: 162, Name: "snmptrap"}, {Port: 163, Name: "cmip-man"}, {Port: 164, Name: "cmip-agent"},
	{Port: 174, Name: "mailq"}, {Port: 177, Name: "xdmcp"}, {Port: 194, Name: "irc-iana"},
	{Port: 199, Name: "smux"}, {Port: 201, Name: "at-rtmp"}, {Port: 209, Name: "qmtp"},
	{Port: 210, Name: "z39.50"}, {Port: 213, Name: "ipx"}, {Port: 311, Name: "asip-webadmin"},
	{Port: 322, Name: "rtsps"}, {Port: 350, Name: "matip-type-a"}, {Port: 369, Name: "rpc2portmap"},
	{Port: 370, Name: "codaauth2"}, {Port: 371, Name: "clearcase"}, {Port: 383, Name: "hp-alarm-mgr"},
	{Port: 406, Name: "imsp"}, {Port: 458, Name: "appleqtc"}, {Port: 497, Name: "retrospect"},
	{Port: 510, Name: "fcp"}, {Port: 517, Name: "talk"}, {Port: 518, Name: "ntalk"},
	{Port: 520, Name: "efs"}, {Port: 525, Name: "timed"}, {Port: 526, Name: "tempo"},
	{Port: 530, Name: "courier"}, {Port: 531, Name: "conference"}, {Port: 532, Name: "netnews"},
	{Port: 540, Name: "uucp"}, {Port: 542, Name: "commerce"}, {Port: 545, Name: "appleqtcsrvr"},
	{Port: 546, Name: "dhcpv6-client"}, {Port: 547, Name: "dhcpv6-server"},
	{Port: 556, Name: "remotefs"}, {Port: 560, Name: "rmonitor"}, {Port: 561, Name: "monitor"},
	{Port: 565, Name: "whoami"}, {Port: 585, Name: "imap4-ssl"}, {Port: 600, Name: "ipcserver"},
	{Port: 602, Name: "xmlrpc-beep"}, {Port: 604, Name: "tunnel"}, {Port: 607, Name: "nqs"},
	{Port: 610, Name: "npmp-local"}, {Port: 611, Name: "npmp-gui"}, {Port: 612, Name: "hmmp-ind"},
	{Port: 616, Name: "sco-sysmgr"}, {Port: 617, Name: "sco-dtmgr"},
	{Port: 625, Name: "apple-xsrvr-admin"}, {Port: 626, Name: "apple-imap-admin"},
	{Port: 628, Name: "qmqp"}, {Port: 637, Name: "lanserver"}, {Port: 660, Name: "mac-srvr-admin"},
	{Port: 666, Name: "doom"}, {Port: 674, Name: "acap"}, {Port: 688, Name: "realm-rusd"},
	{Port: 690, Name: "vatp"}, {Port: 691, Name: "msexch-routing"}, {Port: 694, Name: "ha-cluster"},
	{Port: 695, Name: "ieee-mms-ssl"}, {Port: 698, Name: "olsr"}, {Port: 700, Name: "epp"},
	{Port: 701, Name: "lmp"}, {Port: 702, Name: "iris-beep"}, {Port: 706, Name: "silc"},
	{Port: 711, Name: "cisco-tdp"}, {Port: 712, Name: "tbrpf"}, {Port: 720, Name: "smqp"},
	{Port: 729, Name: "netviewdm1"}, {Port: 740, Name: "netcp"}, {Port: 744, Name: "flexlm"},
	{Port: 747, Name: "fujitsu-dev"}, {Port: 748, Name: "ris-cm"}, {Port: 751, Name: "pump"},
	{Port: 752, Name: "qrh"}, {Port: 753, Name: "rrh"}, {Port: 758, Name: "nlogin"},
	{Port: 759, Name: "con"}, {Port: 760, Name: "ns"}, {Port: 761, Name: "rxe"},
	{Port: 762, Name: "quotad"}, {Port: 763, Name: "cycleserv"}, {Port: 764, Name: "omserv"},
	{Port: 765, Name: "webster"}, {Port: 767, Name: "phonebook"}, {Port: 769, Name: "vid"},
	{Port: 770, Name: "cadlock"}, {Port: 771, Name: "rtip"}, {Port: 772, Name: "cycleserv2"},
	{Port: 773, Name: "submit"}, {Port: 774, Name: "rpasswd"}, {Port: 775, Name: "entomb"},
	{Port: 776, Name: "wpages"}, {Port: 777, Name: "multiling-http"}, {Port: 780, Name: "wpgs"},
	{Port: 800, Name: "mdbs-daemon"}, {Port: 801, Name: "device"}, {Port: 802, Name: "mbap-s"},
	{Port: 808, Name: "ccproxy-http"}, {Port: 810, Name: "fcp-udp"}, {Port: 828, Name: "itm-mcell-s"},
	{Port: 829, Name: "pkix-3-ca-ra"}, {Port: 831, Name: "netconf-beep"},
	{Port: 832, Name: "netconfsoaphttp"}, {Port: 833, Name: "netconfsoapbeep"},
	{Port: 847, Name: "dhcp-failover2"}, {Port: 848, Name: "gdoi"},
	{Port: 853, Name: "domain-s", Scheme: "tls"}, {Port: 854, Name: "dlep"},
	{Port: 861, Name: "owamp-control"}, {Port: 862, Name: "twamp-control"},
	{Port: 871, Name: "supfilesrv"}, {Port: 886, Name: "iclcnet-locate"},
	{Port: 887, Name: "iclcnet-svinfo"}, {Port: 888, Name: "accessbuilder"},
	{Port: 900, Name: "omginitialrefs"}, {Port: 901, Name: "swat"}, {Port: 910, Name: "kink"},
	{Port: 911, Name: "xact-backup"}, {Port: 913, Name: "apex-edge"}, {Port: 953, Name: "rndc"},
	{Port: 981, Name: "remotefs-https"}, {Port: 987, Name: "sbl"}, {Port: 988, Name: "ipp-alt"},
	{Port: 991, Name: "nas"}, {Port: 994, Name: "ircs-u"}, {Port: 996, Name: "vsinet"},
	{Port: 997, Name: "maitrd"}, {Port: 998, Name: "busboy"}, {Port: 999, Name: "garcon"},
	{Port: 1000, Name: "cadlock2"}, {Port: 1001, Name: "webpush"}, {Port: 1002, Name: "windows-icfw"},
	{Port: 1008, Name: "ufsd"}, {Port: 1010, Name: "surf"}, {Port: 1021, Name: "exp1"},
	{Port: 1022, Name: "exp2"}, {Port: 1023, Name: "netvenuechat"}, {Port: 1024, Name: "kdm"},

	// Ports of internal services that the ranking above lacked. They come last so that
	// they take the place of only the tail of the default 1,000 scanned ports.
	{Port: 16379, Name: "redis-cluster-bus", Desc: "Redis cluster bus", Internal: true},
	{Port: 27018, Name: "mongodb-shard", Desc: "MongoDB shard server", Internal: true},
	{Port: 27019, Name: "mongodb-config", Desc: "MongoDB config server", Internal: true},

	// UDP, which the scanner does not rank: the datagram services seen listening on
	// servers. memcached and StatsD over UDP answer anyone who can reach them (memcached
	// is a notorious amplifier), so they are as internal as over TCP.
	{Port: 53, Proto: "udp", Name: "domain", Aliases: []string{"dns"}, Scheme: "dns"},
	{Port: 67, Proto: "udp", Name: "bootps"}, {Port: 68, Proto: "udp", Name: "bootpc"},
	{Port: 69, Proto: "udp", Name: "tftp"}, {Port: 123, Proto: "udp", Name: "ntp"},
	{Port: 137, Proto: "udp", Name: "netbios-ns"}, {Port: 138, Proto: "udp", Name: "netbios-dgm"},
	{Port: 161, Proto: "udp", Name: "snmp"}, {Port: 162, Proto: "udp", Name: "snmptrap"},
	{Port: 500, Proto: "udp", Name: "isakmp"}, {Port: 514, Proto: "udp", Name: "syslog"},
	{Port: 1194, Proto: "udp", Name: "openvpn"}, {Port: 1812, Proto: "udp", Name: "radius"},
	{Port: 1813, Proto: "udp", Name: "radius-acct"}, {Port: 1900, Proto: "udp", Name: "upnp-ssdp"},
	{Port: 3478, Proto: "udp", Name: "stun"}, {Port: 4500, Proto: "udp", Name: "ipsec-nat-t"},
	{Port: 5060, Proto: "udp", Name: "sip"}, {Port: 5353, Proto: "udp", Name: "mdns"},
	{Port: 8125, Proto: "udp", Name: "statsd", Desc: "StatsD", Internal: true},
	{Port: 11211, Proto: "udp", Name: "memcache", Aliases: []string{"memcached"}, Desc: "memcached", Internal: true},
}
