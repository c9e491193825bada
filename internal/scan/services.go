package scan

import "slices"

// Service names a TCP port's usual service.
type Service struct {
	Port uint16
	Name string
}

// topServices is portpatrol's own list of TCP service ports, most common first. The
// order is a judgement of where a port is likely to be open on the servers, workstations,
// clusters and network devices portpatrol watches: first the doors of the internet
// (web, mail, remote login, file sharing), then databases, caches and brokers, cluster
// and observability ports, then enterprise, media and device services, and last the
// rest of the privileged range 1–1023, where system services live. Names are the
// service's common name, or its IANA name where that is the usual one.
var topServices = []Service{
	// Doors of the internet and of every office network.
	{80, "http"}, {443, "https"}, {22, "ssh"}, {21, "ftp"}, {25, "smtp"}, {23, "telnet"},
	{53, "domain"}, {3389, "ms-wbt-server"}, {110, "pop3"}, {143, "imap"}, {445, "microsoft-ds"},
	{139, "netbios-ssn"}, {135, "msrpc"}, {8080, "http-proxy"}, {3306, "mysql"}, {993, "imaps"},
	{995, "pop3s"}, {587, "submission"}, {465, "smtps"}, {111, "rpcbind"}, {5900, "vnc"},
	{8443, "https-alt"}, {1723, "pptp"}, {5432, "postgresql"}, {6379, "redis"}, {8000, "http-alt"},
	{8888, "http-alt2"}, {3000, "grafana"}, {8081, "http-alt3"}, {2049, "nfs"}, {1433, "ms-sql-s"},
	{1521, "oracle"}, {389, "ldap"}, {636, "ldaps"}, {88, "kerberos"}, {5985, "wsman"},
	{5986, "wsmans"}, {631, "ipp"}, {548, "afp"}, {515, "printer"}, {9100, "jetdirect"},
	{179, "bgp"}, {161, "snmp"}, {873, "rsync"}, {990, "ftps"}, {20, "ftp-data"},
	{113, "ident"}, {119, "nntp"}, {1080, "socks"}, {3128, "squid-http"}, {8008, "http-alt4"},
	{10000, "webmin"}, {2222, "ssh-alt"}, {5000, "upnp"}, {5001, "commplex-link"}, {9000, "cslistener"},
	{9090, "prometheus"}, {27017, "mongodb"}, {11211, "memcache"}, {9200, "elasticsearch"},
	{5672, "amqp"}, {1883, "mqtt"}, {4222, "nats"}, {2375, "docker"}, {2376, "docker-tls"},
	{6443, "kubernetes-api"}, {10250, "kubelet"}, {2379, "etcd-client"}, {2380, "etcd-server"},
	{9092, "kafka"}, {2181, "zookeeper"}, {8500, "consul"}, {8200, "vault"}, {5601, "kibana"},
	{9300, "elasticsearch-transport"}, {15672, "rabbitmq-management"}, {8883, "secure-mqtt"},
	{5984, "couchdb"}, {7474, "neo4j"}, {7687, "neo4j-bolt"}, {8086, "influxdb"}, {9042, "cassandra"},
	{6380, "redis-alt"}, {26379, "redis-sentinel"}, {6432, "pgbouncer"}, {5433, "postgresql-alt"},
	{3307, "mysql-alt"}, {33060, "mysqlx"}, {1434, "ms-sql-m"}, {50000, "db2"}, {8009, "ajp13"},
	{8082, "http-alt5"}, {8083, "http-alt6"}, {8084, "http-alt7"}, {8085, "http-alt8"},
	{8088, "radan-http"}, {8089, "splunkd"}, {8090, "http-alt9"}, {8180, "http-alt10"},
	{8181, "http-alt11"}, {9443, "https-alt2"}, {4443, "https-alt3"}, {10443, "https-alt4"},
	{7001, "weblogic"}, {7002, "weblogic-ssl"}, {4848, "glassfish-admin"}, {9990, "wildfly-admin"},
	{1099, "rmiregistry"}, {9999, "abyss"}, {5555, "adb"}, {4444, "krb524"}, {6000, "x11"},
	{5901, "vnc-1"}, {5902, "vnc-2"}, {5800, "vnc-http"}, {3690, "svn"}, {9418, "git"},
	{6667, "irc"}, {6697, "ircs"}, {5222, "xmpp-client"}, {5269, "xmpp-server"}, {5060, "sip"},
	{5061, "sips"}, {554, "rtsp"}, {1935, "rtmp"}, {3478, "stun"}, {1194, "openvpn"},
	{1701, "l2tp"}, {500, "isakmp"}, {3268, "globalcatldap"}, {3269, "globalcatldapssl"},
	{464, "kpasswd"}, {593, "http-rpc-epmap"}, {49152, "msrpc-dyn0"}, {49153, "msrpc-dyn1"},
	{49154, "msrpc-dyn2"}, {49155, "msrpc-dyn3"}, {49156, "msrpc-dyn4"}, {49157, "msrpc-dyn5"},
	{47001, "winrm-http"}, {9389, "adws"}, {3260, "iscsi"}, {902, "vmware-auth"},
	{912, "vmware-authd"}, {5480, "vmware-vami"}, {7547, "cwmp"}, {8291, "winbox"},
	{1900, "upnp-ssdp"}, {5357, "wsdapi"}, {2869, "icslap"}, {62078, "iphone-sync"},
	{5353, "mdns"}, {3283, "net-assistant"}, {5009, "airport-admin"}, {631, "ipp"},

	// Monitoring, observability and configuration management.
	{9100, "jetdirect"}, {9093, "alertmanager"}, {9091, "pushgateway"}, {9115, "blackbox-exporter"},
	{3100, "loki"}, {9411, "zipkin"}, {16686, "jaeger-ui"}, {14268, "jaeger-collector"},
	{14250, "jaeger-grpc"}, {4317, "otlp-grpc"}, {4318, "otlp-http"}, {8125, "statsd"},
	{2003, "graphite"}, {2004, "graphite-pickle"}, {8126, "statsd-admin"}, {10050, "zabbix-agent"},
	{10051, "zabbix-trapper"}, {5666, "nrpe"}, {5667, "nsca"}, {4949, "munin"}, {8649, "ganglia"},
	{19999, "netdata"}, {8140, "puppet"}, {4505, "salt-publish"}, {4506, "salt-request"},
	{5044, "beats"}, {9600, "logstash"}, {24224, "fluentd"}, {6514, "syslog-tls"},
	{601, "syslog-conn"}, {514, "shell"}, {9102, "bacula-fd"}, {9101, "bacula-dir"},
	{9103, "bacula-sd"}, {8834, "nessus"}, {9392, "openvas"}, {3493, "nut"},

	// Clusters: Kubernetes, service meshes, HashiCorp, container platforms.
	{10255, "kubelet-ro"}, {10256, "kube-proxy-health"}, {10257, "kube-controller-manager"},
	{10259, "kube-scheduler"}, {10249, "kube-proxy-metrics"}, {10248, "kubelet-healthz"},
	{2381, "etcd-metrics"}, {9153, "coredns-metrics"}, {4194, "cadvisor"}, {9099, "calico-felix"},
	{5473, "calico-typha"}, {6783, "weave"}, {7946, "memberlist"}, {8472, "vxlan-flannel"},
	{15000, "envoy-admin-istio"}, {15001, "istio-outbound"}, {15006, "istio-inbound"},
	{15010, "istiod-grpc"}, {15012, "istiod-xds"}, {15014, "istiod-monitoring"},
	{15017, "istiod-webhook"}, {15020, "istio-merged-metrics"}, {15021, "istio-health"},
	{15090, "envoy-prometheus"}, {9901, "envoy-admin"}, {8001, "kubectl-proxy"},
	{8600, "consul-dns"}, {8300, "consul-server"}, {8301, "consul-serf-lan"},
	{8302, "consul-serf-wan"}, {8501, "consul-https"}, {8502, "consul-grpc"},
	{4646, "nomad-http"}, {4647, "nomad-rpc"}, {4648, "nomad-serf"}, {8201, "vault-cluster"},
	{2377, "docker-swarm"}, {5005, "jdwp"}, {5050, "mesos-master"}, {5051, "mesos-agent"},
	{8472, "otv"}, {6781, "weave-metrics"}, {9796, "rancher-exporter"}, {6444, "k3s-api"},
	{9345, "rke2-supervisor"}, {16443, "microk8s-api"}, {30000, "nodeport-first"},
	{32767, "nodeport-last"}, {5432, "postgresql"},

	// Brokers, streaming and data platforms.
	{6222, "nats-cluster"}, {8222, "nats-monitor"}, {7422, "nats-leafnode"}, {5671, "amqps"},
	{4369, "epmd"}, {25672, "rabbitmq-dist"}, {61613, "stomp"}, {61614, "stomp-ssl"},
	{61616, "activemq"}, {8161, "activemq-web"}, {6650, "pulsar"}, {6651, "pulsar-tls"},
	{9093, "kafka-ssl"}, {9094, "kafka-alt"}, {29092, "kafka-docker"}, {8083, "kafka-connect"},
	{9644, "redpanda-admin"}, {2888, "zookeeper-peer"}, {3888, "zookeeper-election"},
	{5701, "hazelcast"}, {11210, "couchbase-data"}, {8091, "couchbase-admin"},
	{8092, "couchbase-views"}, {8093, "couchbase-query"}, {18091, "couchbase-admin-ssl"},
	{7000, "cassandra-internode"}, {7199, "cassandra-jmx"}, {9160, "cassandra-thrift"},
	{8087, "riak-pb"}, {8098, "riak-http"}, {8529, "arangodb"}, {28015, "rethinkdb"},
	{29015, "rethinkdb-cluster"}, {7473, "neo4j-https"}, {3050, "firebird"}, {1526, "oracle-alt"},
	{1522, "oracle-listener-alt"}, {2484, "oracle-tcps"}, {5500, "oracle-em"}, {8529, "arangodb"},
	{4567, "galera"}, {4568, "galera-ist"}, {4444, "galera-sst"}, {9000, "clickhouse-native"},
	{8123, "clickhouse-http"}, {9004, "clickhouse-mysql"}, {8812, "questdb-pg"},
	{26257, "cockroachdb"}, {4000, "tidb"}, {2379, "etcd-client"}, {7050, "sybase"},
	{5000, "sybase-alt"}, {1583, "pervasive-sql"}, {3351, "btrieve"}, {1527, "derby"},
	{9001, "tor-orport"}, {8983, "solr"}, {7700, "meilisearch"}, {7280, "quickwit"},
	{8108, "typesense"}, {6333, "qdrant"}, {19530, "milvus"}, {8529, "arangodb"},
	{11222, "infinispan"}, {6000, "x11"},

	// Big data.
	{4040, "spark-ui"}, {7077, "spark-master"}, {8042, "yarn-nodemanager"}, {8032, "yarn-rm"},
	{8030, "yarn-scheduler"}, {8031, "yarn-tracker"}, {8033, "yarn-admin"}, {19888, "mr-jobhistory"},
	{50070, "hdfs-namenode-http"}, {9870, "hdfs-namenode-http3"}, {8020, "hdfs-namenode"},
	{50010, "hdfs-datanode"}, {9864, "hdfs-datanode-http"}, {9866, "hdfs-datanode3"},
	{16010, "hbase-master-ui"}, {16000, "hbase-master"}, {16020, "hbase-regionserver"},
	{9083, "hive-metastore"}, {10002, "hive-ui"}, {8998, "livy"}, {7180, "cloudera-manager"},
	{8088, "radan-http"}, {18080, "spark-history"}, {8890, "zeppelin"}, {8793, "airflow-logs"},
	{8793, "airflow-logs"}, {6006, "tensorboard"}, {8501, "streamlit"}, {8265, "ray-dashboard"},
	{6379, "redis"}, {10001, "ray-client"}, {8786, "dask-scheduler"}, {8787, "dask-dashboard"},

	// Development servers and application frameworks.
	{3001, "http-dev"}, {4200, "angular-dev"}, {5173, "vite-dev"}, {8010, "http-alt12"},
	{8002, "http-alt13"}, {8003, "http-alt14"}, {8004, "http-alt15"}, {8005, "tomcat-shutdown"},
	{8006, "http-alt16"}, {8007, "http-alt17"}, {8099, "http-alt18"}, {8100, "http-alt19"},
	{8800, "http-alt20"}, {8880, "cddbp-alt"}, {8899, "http-alt21"}, {9080, "websphere-http"},
	{9060, "websphere-admin"}, {9043, "websphere-admin-ssl"}, {9081, "http-alt22"},
	{7070, "realserver"}, {7080, "http-alt23"}, {7443, "https-alt5"}, {8880, "cddbp-alt"},
	{9009, "pichat"}, {4000, "remoteanything"}, {4001, "newoak"}, {5500, "hotline"},
	{5010, "telelpathstart"}, {3030, "http-dev2"}, {8069, "odoo"}, {8384, "syncthing-gui"},
	{22000, "syncthing"}, {9998, "distinct32"}, {1337, "waste"}, {8545, "ethereum-rpc"},
	{8546, "ethereum-ws"}, {30303, "ethereum-p2p"}, {8333, "bitcoin"}, {18333, "bitcoin-testnet"},
	{9735, "lightning"}, {26656, "tendermint-p2p"}, {26657, "tendermint-rpc"},

	// Remote administration, desktops and thin clients.
	{5938, "teamviewer"}, {6129, "dameware"}, {3390, "rdp-alt"}, {1494, "citrix-ica"},
	{2598, "citrix-cgp"}, {4899, "radmin"}, {5631, "pcanywheredata"}, {2179, "vmrdp"},
	{6001, "x11-1"}, {6002, "x11-2"}, {6003, "x11-3"}, {6004, "x11-4"}, {6005, "x11-5"},
	{5903, "vnc-3"}, {5904, "vnc-4"}, {5905, "vnc-5"}, {5906, "vnc-6"}, {5910, "vnc-10"},
	{5801, "vnc-http-1"}, {5802, "vnc-http-2"}, {7100, "font-service"}, {6112, "dtspc"},
	{830, "netconf-ssh"}, {2022, "ssh-alt2"}, {2200, "ssh-alt3"}, {22222, "ssh-alt4"},
	{992, "telnets"}, {513, "login"}, {512, "exec"}, {543, "klogin"}, {544, "kshell"},
	{2001, "dc"}, {2000, "cisco-sccp"}, {4786, "smart-install"}, {1720, "h323q931"},
	{1812, "radius"}, {1813, "radius-acct"}, {49, "tacacs"}, {2601, "zebra"}, {2602, "ripd"},
	{2604, "ospfd"}, {2605, "bgpd"}, {646, "ldp"}, {639, "msdp"}, {3784, "bfd-control"},

	// Windows and enterprise directory services.
	{1801, "msmq"}, {2103, "zephyr-clt"}, {2105, "eklogin"}, {2107, "msmq-mgmt"},
	{3372, "msdtc"}, {5722, "dfsr"}, {8530, "wsus-http"}, {8531, "wsus-https"},
	{1270, "opsmgr"}, {3343, "ms-cluster-net"}, {1025, "blackjack"}, {1026, "win-rpc-1026"},
	{1027, "win-rpc-1027"}, {1028, "win-rpc-1028"}, {1029, "ms-lsa"}, {1030, "iad1"},
	{1031, "iad2"}, {1110, "nfsd-status"}, {2701, "sms-rcinfo"}, {2702, "sms-xfer"},
	{1352, "lotusnotes"}, {3052, "powerchute"}, {8014, "http-alt24"}, {9389, "adws"},
	{88, "kerberos"}, {750, "kerberos-iv"}, {749, "kerberos-adm"}, {754, "krb-prop"},

	// Mail, news and messaging beyond the basics.
	{2525, "smtp-alt"}, {24, "priv-mail"}, {106, "pop3pw"}, {109, "pop2"}, {220, "imap3"},
	{366, "odmr"}, {4190, "sieve"}, {563, "nntps"}, {444, "snpp"}, {5190, "aol"},
	{5280, "xmpp-bosh"}, {1863, "msnp"}, {5298, "presence"}, {7777, "cbt"}, {6668, "irc-alt"},
	{6665, "irc-alt2"}, {6666, "irc-alt3"}, {6669, "irc-alt4"}, {8067, "irc-alt5"},
	{6881, "bittorrent"}, {6346, "gnutella"}, {4662, "edonkey"}, {1214, "kazaa"},

	// Storage, backup and file transfer.
	{20048, "mountd"}, {4045, "lockd"}, {10809, "nbd"}, {6789, "ceph-mon"}, {3300, "ceph-mon2"},
	{6800, "ceph-osd"}, {7480, "ceph-rgw"}, {9001, "minio-console"}, {989, "ftps-data"},
	{115, "sftp"}, {69, "tftp"}, {2121, "ftp-alt"}, {8021, "ftp-proxy"}, {10080, "amanda"},
	{9418, "git"}, {10000, "ndmp"}, {3205, "isns"}, {860, "iscsi-alt"}, {2048, "dls-monitor"},
	{5989, "wbem-https"}, {5988, "wbem-http"}, {427, "svrloc"}, {1311, "dell-openmanage"},
	{623, "ipmi"}, {664, "asf-secure-rmcp"}, {17988, "ilo-vm"}, {17990, "ilo-remote-console"},
	{3269, "globalcatldapssl"},

	// Media, VoIP, printing and devices.
	{1755, "wms"}, {8554, "rtsp-alt"}, {5004, "rtp"}, {5005, "rtp-control"}, {3689, "daap"},
	{32400, "plex"}, {8096, "jellyfin"}, {8920, "jellyfin-https"}, {8200, "trivnet1"},
	{1900, "upnp-ssdp"}, {49000, "fritzbox-tr064"}, {8008, "chromecast"}, {8009, "chromecast-tls"},
	{7000, "airplay"}, {5353, "mdns"}, {6566, "sane-port"}, {9220, "hp-pdl-data"},
	{280, "http-mgmt"}, {591, "filemaker"}, {5080, "onscreen"}, {4070, "tripe"},
	{2000, "callbook"}, {1719, "h323gatestat"}, {5062, "localisation-access"}, {2427, "mgcp"},
	{2727, "mgcp-callagent"}, {4569, "iax"}, {8021, "freeswitch-esl"}, {5038, "asterisk-ami"},
	{8088, "asterisk-http"}, {9000, "php-fpm"}, {25565, "minecraft"}, {27015, "srcds"},
	{27036, "steam-streaming"}, {3074, "xbox"}, {3659, "apple-sasl"}, {3283, "apple-remote-desktop"},
	{5900, "vnc"}, {548, "afp"}, {427, "svrloc"}, {3031, "eppc"}, {49152, "msrpc-dyn0"},

	// Industrial control and building automation.
	{502, "modbus"}, {102, "iso-tsap"}, {20000, "dnp3"}, {44818, "ethernet-ip"},
	{47808, "bacnet"}, {1911, "fox"}, {4911, "fox-tls"}, {2404, "iec-104"}, {789, "redlion"},
	{9600, "omron-fins"}, {1962, "pcworx"}, {5094, "hart-ip"}, {18245, "ge-srtp"},
	{2455, "codesys"}, {4840, "opc-ua"}, {1883, "mqtt"},

	// Security tools, proxies and VPNs.
	{8118, "privoxy"}, {9050, "tor-socks"}, {9051, "tor-control"}, {9030, "tor-dir"},
	{3129, "squid-alt"}, {8123, "polipo"}, {1194, "openvpn"}, {443, "https"}, {4500, "ipsec-nat-t"},
	{10443, "fortinet-ssl-vpn"}, {4433, "https-alt6"}, {8834, "nessus"}, {3780, "nexpose"},
	{55553, "metasploit-rpc"}, {9390, "openvas-omp"}, {8081, "http-alt3"}, {7443, "https-alt5"},
	{1701, "l2tp"}, {1812, "radius"}, {9443, "https-alt2"}, {12345, "netbus"}, {31337, "elite"},

	// Classic Unix services.
	{7, "echo"}, {9, "discard"}, {13, "daytime"}, {17, "qotd"}, {19, "chargen"}, {37, "time"},
	{79, "finger"}, {70, "gopher"}, {43, "whois"}, {42, "nameserver"}, {11, "systat"},
	{15, "netstat"}, {101, "hostname"}, {105, "csnet-ns"}, {107, "rtelnet"}, {117, "uucp-path"},
	{118, "sqlserv"}, {123, "ntp"}, {137, "netbios-ns"}, {138, "netbios-dgm"}, {150, "sql-net"},
	{162, "snmptrap"}, {163, "cmip-man"}, {164, "cmip-agent"}, {174, "mailq"}, {177, "xdmcp"},
	{194, "irc-iana"}, {199, "smux"}, {201, "at-rtmp"}, {209, "qmtp"}, {210, "z39.50"},
	{213, "ipx"}, {311, "asip-webadmin"}, {322, "rtsps"}, {350, "matip-type-a"},
	{369, "rpc2portmap"}, {370, "codaauth2"}, {371, "clearcase"}, {383, "hp-alarm-mgr"},
	{406, "imsp"}, {443, "https"}, {458, "appleqtc"}, {497, "retrospect"}, {500, "isakmp"},
	{510, "fcp"}, {517, "talk"}, {518, "ntalk"}, {520, "efs"}, {525, "timed"}, {526, "tempo"},
	{530, "courier"}, {531, "conference"}, {532, "netnews"}, {540, "uucp"}, {542, "commerce"},
	{545, "appleqtcsrvr"}, {546, "dhcpv6-client"}, {547, "dhcpv6-server"}, {554, "rtsp"},
	{556, "remotefs"}, {560, "rmonitor"}, {561, "monitor"}, {565, "whoami"}, {585, "imap4-ssl"},
	{600, "ipcserver"}, {602, "xmlrpc-beep"}, {604, "tunnel"}, {607, "nqs"}, {610, "npmp-local"},
	{611, "npmp-gui"}, {612, "hmmp-ind"}, {616, "sco-sysmgr"}, {617, "sco-dtmgr"},
	{625, "apple-xsrvr-admin"}, {626, "apple-imap-admin"}, {628, "qmqp"}, {631, "ipp"},
	{637, "lanserver"}, {660, "mac-srvr-admin"}, {666, "doom"}, {674, "acap"},
	{688, "realm-rusd"}, {690, "vatp"}, {691, "msexch-routing"}, {694, "ha-cluster"},
	{695, "ieee-mms-ssl"}, {698, "olsr"}, {700, "epp"}, {701, "lmp"}, {702, "iris-beep"},
	{706, "silc"}, {711, "cisco-tdp"}, {712, "tbrpf"}, {720, "smqp"}, {729, "netviewdm1"},
	{740, "netcp"}, {744, "flexlm"}, {747, "fujitsu-dev"}, {748, "ris-cm"}, {751, "pump"},
	{752, "qrh"}, {753, "rrh"}, {758, "nlogin"}, {759, "con"}, {760, "ns"}, {761, "rxe"},
	{762, "quotad"}, {763, "cycleserv"}, {764, "omserv"}, {765, "webster"}, {767, "phonebook"},
	{769, "vid"}, {770, "cadlock"}, {771, "rtip"}, {772, "cycleserv2"}, {773, "submit"},
	{774, "rpasswd"}, {775, "entomb"}, {776, "wpages"}, {777, "multiling-http"}, {780, "wpgs"},
	{800, "mdbs-daemon"}, {801, "device"}, {802, "mbap-s"}, {808, "ccproxy-http"},
	{810, "fcp-udp"}, {828, "itm-mcell-s"}, {829, "pkix-3-ca-ra"}, {831, "netconf-beep"},
	{832, "netconfsoaphttp"}, {833, "netconfsoapbeep"}, {847, "dhcp-failover2"},
	{848, "gdoi"}, {853, "domain-s"}, {854, "dlep"}, {860, "iscsi"}, {861, "owamp-control"},
	{862, "twamp-control"}, {871, "supfilesrv"}, {886, "iclcnet-locate"}, {887, "iclcnet-svinfo"},
	{888, "accessbuilder"}, {900, "omginitialrefs"}, {901, "swat"}, {910, "kink"},
	{911, "xact-backup"}, {913, "apex-edge"}, {953, "rndc"}, {981, "remotefs-https"},
	{987, "sbl"}, {988, "ipp-alt"}, {991, "nas"}, {994, "ircs-u"}, {996, "vsinet"},
	{997, "maitrd"}, {998, "busboy"}, {999, "garcon"}, {1000, "cadlock2"}, {1001, "webpush"},
	{1002, "windows-icfw"}, {1008, "ufsd"}, {1010, "surf"}, {1021, "exp1"}, {1022, "exp2"},
	{1023, "netvenuechat"}, {1024, "kdm"},
}

// topPorts is topServices without repeats, in order: a port listed twice keeps its first
// place and first name.
func topPorts() []Service {
	seen := make(map[uint16]bool, len(topServices))
	out := make([]Service, 0, len(topServices)+1024)
	for _, s := range topServices {
		if !seen[s.Port] {
			seen[s.Port] = true
			out = append(out, s)
		}
	}
	// The rest of the privileged range, in order: system services live there.
	for p := uint16(1); p < 1024; p++ {
		if !seen[p] {
			seen[p] = true
			out = append(out, Service{Port: p})
		}
	}
	return out
}

// Top returns the n most common service ports, sorted by port number. n larger than the
// list returns the whole list (topServices plus the privileged range, well over 1,000
// ports).
func Top(n int) PortList {
	all := topPorts()
	if n > len(all) {
		n = len(all)
	}
	l := make(PortList, 0, max(n, 0))
	for _, s := range all[:max(n, 0)] {
		l = append(l, s.Port)
	}
	slices.Sort(l)
	return l
}

// ServiceName returns the usual service name for a TCP port, or "" when the list has
// none.
func ServiceName(port uint16) string {
	for _, s := range topServices {
		if s.Port == port {
			return s.Name
		}
	}
	return ""
}

// guessSchemes maps a port to the protocol portpatrol's probes would speak there.
var guessSchemes = map[uint16]string{
	22: "ssh", 2222: "ssh", 25: "smtp", 587: "smtp", 2525: "smtp", 465: "tls",
	53: "dns", 80: "http", 8000: "http", 8008: "http", 8080: "http", 8081: "http", 8888: "http",
	3000: "http", 9090: "http", 9100: "http", 9093: "http", 9115: "http",
	443: "https", 8443: "https", 9443: "https", 4443: "https", 6443: "https", 10250: "https",
	993: "tls", 995: "tls", 636: "tls", 853: "tls", 5671: "tls", 8883: "tls",
	6379: "redis", 6380: "redis", 26379: "redis",
	3306: "mysql", 3307: "mysql", 4000: "mysql", 9004: "mysql",
	5432: "postgres", 5433: "postgres", 6432: "postgres", 26257: "postgres",
	4222: "nats", 5672: "amqp", 1883: "mqtt",
}

// GuessScheme returns the target scheme (as patrol.Schemes names them) that probably
// speaks on a port, or "tcp" when there is no better guess.
func GuessScheme(port uint16) string {
	if s, ok := guessSchemes[port]; ok {
		return s
	}
	return "tcp"
}
