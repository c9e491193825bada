package inventory

import "slices"

// InternalService is a kind of server that is usually meant for internal networks only.
type InternalService struct {
	Name string
	// Ports are its well-known ports; Commands the process names (comm) it runs as.
	Ports    []uint16
	Commands []string
}

// InternalServices lists servers that should rarely listen on a public address: data
// stores, message brokers, cluster and control-plane ports.
var InternalServices = []InternalService{
	{"Redis", []uint16{6379, 16379}, []string{"redis-server"}},
	{"MySQL/MariaDB", []uint16{3306, 33060}, []string{"mysqld", "mariadbd"}},
	{"PostgreSQL", []uint16{5432}, []string{"postgres", "postmaster"}},
	{"memcached", []uint16{11211}, []string{"memcached"}},
	{"Elasticsearch/OpenSearch", []uint16{9200, 9300}, nil},
	{"etcd", []uint16{2379, 2380}, []string{"etcd"}},
	{"MongoDB", []uint16{27017, 27018, 27019}, []string{"mongod", "mongos"}},
	{"RabbitMQ", []uint16{5672, 15672, 25672}, nil},
	{"Erlang port mapper (epmd)", []uint16{4369}, []string{"epmd"}},
	{"NATS", []uint16{4222, 6222, 8222}, []string{"nats-server"}},
	{"ZooKeeper", []uint16{2181}, nil},
	{"Kafka", []uint16{9092}, nil},
	{"Cassandra", []uint16{9042, 7000, 7199}, nil},
	{"CouchDB", []uint16{5984}, nil},
	{"InfluxDB", []uint16{8086}, []string{"influxd"}},
	{"ClickHouse", []uint16{8123, 9000}, []string{"clickhouse-serv", "clickhouse"}},
	{"Docker API", []uint16{2375, 2376}, []string{"dockerd"}},
	{"kubelet", []uint16{10250}, []string{"kubelet"}},
	{"Consul", []uint16{8500, 8300, 8301}, []string{"consul"}},
	{"MQTT (Mosquitto)", []uint16{1883}, []string{"mosquitto"}},
	{"KeyDB/Dragonfly", nil, []string{"keydb-server", "dragonfly"}},
}

// Exposed reports whether s is a listener on a public bind (the unspecified address,
// 0.0.0.0 or ::) of a service usually meant to be internal, matched by its process's
// name (when its owner is known) or else by its port. It returns the service's name.
func Exposed(s *Socket) (string, bool) {
	if !s.Listening() || !s.Local.Addr().IsUnspecified() {
		return "", false
	}
	port := s.Local.Port()
	if s.Owner != nil {
		for _, is := range InternalServices {
			if slices.Contains(is.Commands, s.Owner.Command) {
				return is.Name, true
			}
		}
	}
	for _, is := range InternalServices {
		if slices.Contains(is.Ports, port) {
			return is.Name, true
		}
	}
	return "", false
}
