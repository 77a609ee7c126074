package cloudconfig

// Config is a #cloud-config document. Field order is render order.
type Config struct {
	Hostname          string   `yaml:"hostname,omitempty"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys,omitempty"`
	ManageEtcHosts    string   `yaml:"manage_etc_hosts,omitempty"`
	Users             []User   `yaml:"users,omitempty"`
	WriteFiles        []File   `yaml:"write_files,omitempty"`
	CoreOS            CoreOS   `yaml:"coreos,omitempty"`
}

// User is an entry of users.
type User struct {
	Name                 string   `yaml:"name,omitempty"`
	PasswordHash         string   `yaml:"passwd,omitempty"`
	SSHAuthorizedKeys    []string `yaml:"ssh_authorized_keys,omitempty"`
	SSHImportGithubUser  string   `yaml:"coreos_ssh_import_github,omitempty" deprecated:"trying to fetch from a remote endpoint introduces too many intermittent errors"`
	SSHImportGithubUsers []string `yaml:"coreos_ssh_import_github_users,omitempty" deprecated:"trying to fetch from a remote endpoint introduces too many intermittent errors"`
	SSHImportURL         string   `yaml:"coreos_ssh_import_url,omitempty" deprecated:"trying to fetch from a remote endpoint introduces too many intermittent errors"`
	GECOS                string   `yaml:"gecos,omitempty"`
	Homedir              string   `yaml:"homedir,omitempty"`
	NoCreateHome         bool     `yaml:"no_create_home,omitempty"`
	PrimaryGroup         string   `yaml:"primary_group,omitempty"`
	Groups               []string `yaml:"groups,omitempty"`
	NoUserGroup          bool     `yaml:"no_user_group,omitempty"`
	System               bool     `yaml:"system,omitempty"`
	NoLogInit            bool     `yaml:"no_log_init,omitempty"`
	Shell                string   `yaml:"shell,omitempty"`
}

// File is an entry of write_files.
type File struct {
	Path               string `yaml:"path,omitempty"`
	Owner              string `yaml:"owner,omitempty"`
	RawFilePermissions string `yaml:"permissions,omitempty" valid:"^0?[0-7]{3,4}$"`
	Encoding           string `yaml:"encoding,omitempty" valid:"^(base64|b64|gz|gzip|gz\\+base64|gzip\\+base64|gz\\+b64|gzip\\+b64)$"`
	Content            string `yaml:"content,omitempty"`
}

// CoreOS is the coreos: section.
type CoreOS struct {
	Etcd      *Etcd      `yaml:"etcd,omitempty" deprecated:"etcd is no longer shipped in Container Linux"`
	Etcd2     *Etcd2     `yaml:"etcd2,omitempty" deprecated:"etcd2 is no longer shipped in Container Linux"`
	Flannel   *Flannel   `yaml:"flannel,omitempty"`
	Fleet     *Fleet     `yaml:"fleet,omitempty" deprecated:"fleet is no longer shipped in Container Linux"`
	Locksmith *Locksmith `yaml:"locksmith,omitempty"`
	OEM       *OEM       `yaml:"oem,omitempty"`
	Update    *Update    `yaml:"update,omitempty"`
	Units     []Unit     `yaml:"units,omitempty"`
}

// Unit is an entry of coreos.units.
type Unit struct {
	Name    string   `yaml:"name,omitempty"`
	Mask    bool     `yaml:"mask,omitempty"`
	Enable  bool     `yaml:"enable,omitempty"`
	Runtime bool     `yaml:"runtime,omitempty"`
	Content string   `yaml:"content,omitempty"`
	Command string   `yaml:"command,omitempty" valid:"^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$"`
	DropIns []DropIn `yaml:"drop_ins,omitempty"`
}

// DropIn is a unit drop-in file.
type DropIn struct {
	Name    string `yaml:"name,omitempty"`
	Content string `yaml:"content,omitempty"`
}

// Update is coreos.update (/etc/coreos/update.conf).
type Update struct {
	RebootStrategy string `yaml:"reboot_strategy,omitempty" valid:"^(etcd-lock|reboot|off)$"`
	Group          string `yaml:"group,omitempty"`
	Server         string `yaml:"server,omitempty"`
}

// Locksmith is coreos.locksmith.
type Locksmith struct {
	Endpoint           string `yaml:"endpoint,omitempty"`
	EtcdCAFile         string `yaml:"etcd_cafile,omitempty"`
	EtcdCertFile       string `yaml:"etcd_certfile,omitempty"`
	EtcdKeyFile        string `yaml:"etcd_keyfile,omitempty"`
	EtcdUsername       string `yaml:"etcd_username,omitempty"`
	EtcdPassword       string `yaml:"etcd_password,omitempty"`
	Group              string `yaml:"group,omitempty"`
	RebootWindowStart  string `yaml:"window_start,omitempty" valid:"^((?i:sun|mon|tue|wed|thu|fri|sat|sun) )?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$"`
	RebootWindowLength string `yaml:"window_length,omitempty" valid:"^[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+$"`
}

// OEM is coreos.oem.
type OEM struct {
	ID           string `yaml:"id,omitempty"`
	Name         string `yaml:"name,omitempty"`
	VersionID    string `yaml:"version_id,omitempty"`
	HomeURL      string `yaml:"home_url,omitempty"`
	BugReportURL string `yaml:"bug_report_url,omitempty"`
}

// Flannel is coreos.flannel (written to /run/flannel/options.env).
type Flannel struct {
	EtcdEndpoints string `yaml:"etcd_endpoints,omitempty"`
	EtcdCAFile    string `yaml:"etcd_cafile,omitempty"`
	EtcdCertFile  string `yaml:"etcd_certfile,omitempty"`
	EtcdKeyFile   string `yaml:"etcd_keyfile,omitempty"`
	EtcdPrefix    string `yaml:"etcd_prefix,omitempty"`
	EtcdUsername  string `yaml:"etcd_username,omitempty"`
	EtcdPassword  string `yaml:"etcd_password,omitempty"`
	IPMasq        string `yaml:"ip_masq,omitempty"`
	SubnetFile    string `yaml:"subnet_file,omitempty"`
	Iface         string `yaml:"interface,omitempty"`
	PublicIP      string `yaml:"public_ip,omitempty"`
}

// Fleet is coreos.fleet (legacy: fleet.service is not on Flatcar).
type Fleet struct {
	AgentTTL                string  `yaml:"agent_ttl,omitempty"`
	AuthorizedKeysFile      string  `yaml:"authorized_keys_file,omitempty"`
	DisableEngine           bool    `yaml:"disable_engine,omitempty"`
	EngineReconcileInterval float64 `yaml:"engine_reconcile_interval,omitempty"`
	EtcdCAFile              string  `yaml:"etcd_cafile,omitempty"`
	EtcdCertFile            string  `yaml:"etcd_certfile,omitempty"`
	EtcdKeyFile             string  `yaml:"etcd_keyfile,omitempty"`
	EtcdKeyPrefix           string  `yaml:"etcd_key_prefix,omitempty"`
	EtcdRequestTimeout      float64 `yaml:"etcd_request_timeout,omitempty"`
	EtcdServers             string  `yaml:"etcd_servers,omitempty"`
	EtcdUsername            string  `yaml:"etcd_username,omitempty"`
	EtcdPassword            string  `yaml:"etcd_password,omitempty"`
	Metadata                string  `yaml:"metadata,omitempty"`
	PublicIP                string  `yaml:"public_ip,omitempty"`
	TokenLimit              int     `yaml:"token_limit,omitempty"`
	Verbosity               int     `yaml:"verbosity,omitempty"`
	VerifyUnits             bool    `yaml:"verify_units,omitempty"`
}

// Etcd2 is coreos.etcd2 (legacy: etcd2.service is not on Flatcar).
type Etcd2 struct {
	AdvertiseClientURLs      string `yaml:"advertise_client_urls,omitempty"`
	CAFile                   string `yaml:"ca_file,omitempty" deprecated:"ca_file obsoleted by trusted_ca_file and client_cert_auth"`
	CertFile                 string `yaml:"cert_file,omitempty"`
	ClientCertAuth           bool   `yaml:"client_cert_auth,omitempty"`
	CorsOrigins              string `yaml:"cors,omitempty"`
	DataDir                  string `yaml:"data_dir,omitempty"`
	Debug                    bool   `yaml:"debug,omitempty"`
	Discovery                string `yaml:"discovery,omitempty"`
	DiscoveryFallback        string `yaml:"discovery_fallback,omitempty"`
	DiscoverySRV             string `yaml:"discovery_srv,omitempty"`
	DiscoveryProxy           string `yaml:"discovery_proxy,omitempty"`
	ElectionTimeout          int    `yaml:"election_timeout,omitempty"`
	EnablePprof              bool   `yaml:"enable_pprof,omitempty"`
	ForceNewCluster          bool   `yaml:"force_new_cluster,omitempty"`
	HeartbeatInterval        int    `yaml:"heartbeat_interval,omitempty"`
	InitialAdvertisePeerURLs string `yaml:"initial_advertise_peer_urls,omitempty"`
	InitialCluster           string `yaml:"initial_cluster,omitempty"`
	InitialClusterState      string `yaml:"initial_cluster_state,omitempty"`
	InitialClusterToken      string `yaml:"initial_cluster_token,omitempty"`
	KeyFile                  string `yaml:"key_file,omitempty"`
	ListenClientURLs         string `yaml:"listen_client_urls,omitempty"`
	ListenPeerURLs           string `yaml:"listen_peer_urls,omitempty"`
	LogPackageLevels         string `yaml:"log_package_levels,omitempty"`
	MaxSnapshots             int    `yaml:"max_snapshots,omitempty"`
	MaxWALs                  int    `yaml:"max_wals,omitempty"`
	Name                     string `yaml:"name,omitempty"`
	PeerCAFile               string `yaml:"peer_ca_file,omitempty" deprecated:"peer_ca_file obsoleted peer_trusted_ca_file and peer_client_cert_auth"`
	PeerCertFile             string `yaml:"peer_cert_file,omitempty"`
	PeerKeyFile              string `yaml:"peer_key_file,omitempty"`
	PeerClientCertAuth       bool   `yaml:"peer_client_cert_auth,omitempty"`
	PeerTrustedCAFile        string `yaml:"peer_trusted_ca_file,omitempty"`
	Proxy                    string `yaml:"proxy,omitempty" valid:"^(on|off|readonly)$"`
	ProxyDialTimeout         int    `yaml:"proxy_dial_timeout,omitempty"`
	ProxyFailureWait         int    `yaml:"proxy_failure_wait,omitempty"`
	ProxyReadTimeout         int    `yaml:"proxy_read_timeout,omitempty"`
	ProxyRefreshInterval     int    `yaml:"proxy_refresh_interval,omitempty"`
	ProxyWriteTimeout        int    `yaml:"proxy_write_timeout,omitempty"`
	SnapshotCount            int    `yaml:"snapshot_count,omitempty"`
	StrictReconfigCheck      bool   `yaml:"strict_reconfig_check,omitempty"`
	TrustedCAFile            string `yaml:"trusted_ca_file,omitempty"`
	WalDir                   string `yaml:"wal_dir,omitempty"`
}

// Etcd is coreos.etcd, etcd 0.4's settings (legacy).
type Etcd struct {
	Addr                  string  `yaml:"addr,omitempty"`
	BindAddr              string  `yaml:"bind_addr,omitempty"`
	CAFile                string  `yaml:"ca_file,omitempty"`
	CertFile              string  `yaml:"cert_file,omitempty"`
	ClusterActiveSize     int     `yaml:"cluster_active_size,omitempty"`
	ClusterRemoveDelay    float64 `yaml:"cluster_remove_delay,omitempty"`
	ClusterSyncInterval   float64 `yaml:"cluster_sync_interval,omitempty"`
	CorsOrigins           string  `yaml:"cors,omitempty"`
	DataDir               string  `yaml:"data_dir,omitempty"`
	Discovery             string  `yaml:"discovery,omitempty"`
	GraphiteHost          string  `yaml:"graphite_host,omitempty"`
	HTTPReadTimeout       float64 `yaml:"http_read_timeout,omitempty"`
	HTTPWriteTimeout      float64 `yaml:"http_write_timeout,omitempty"`
	KeyFile               string  `yaml:"key_file,omitempty"`
	MaxResultBuffer       int     `yaml:"max_result_buffer,omitempty"`
	MaxRetryAttempts      int     `yaml:"max_retry_attempts,omitempty"`
	Name                  string  `yaml:"name,omitempty"`
	PeerAddr              string  `yaml:"peer_addr,omitempty"`
	PeerBindAddr          string  `yaml:"peer_bind_addr,omitempty"`
	PeerCAFile            string  `yaml:"peer_ca_file,omitempty"`
	PeerCertFile          string  `yaml:"peer_cert_file,omitempty"`
	PeerElectionTimeout   int     `yaml:"peer_election_timeout,omitempty"`
	PeerHeartbeatInterval int     `yaml:"peer_heartbeat_interval,omitempty"`
	PeerKeyFile           string  `yaml:"peer_key_file,omitempty"`
	Peers                 string  `yaml:"peers,omitempty"`
	PeersFile             string  `yaml:"peers_file,omitempty"`
	RetryInterval         float64 `yaml:"retry_interval,omitempty"`
	Snapshot              bool    `yaml:"snapshot,omitempty"`
	SnapshotCount         int     `yaml:"snapshot_count,omitempty"`
	Trace                 bool    `yaml:"trace,omitempty"`
	Verbose               bool    `yaml:"verbose,omitempty"`
	VeryVerbose           bool    `yaml:"very_verbose,omitempty"`
	VeryVeryVerbose       bool    `yaml:"very_very_verbose,omitempty"`
}
