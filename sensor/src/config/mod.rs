//! The sensor's configuration: one TOML file, typed, with every default
//! defined once here. `sensor run` with no file uses [`Config::default`],
//! which must be useful on its own (capture everything, JSON to stdout).

pub mod filter;
pub mod sinks;
pub mod telemetry;
pub mod watch;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use sinks::SinkConfig;
pub use telemetry::TelemetryConfig;
pub mod audit;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the offending key and line (unknown keys too,
    /// thanks to `deny_unknown_fields`).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config value `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("invalid config value `{key}`: {problem}")]
    InvalidSink { key: String, problem: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub process: ProcessConfig,
    pub ebpf: EbpfConfig,
    pub agent: AgentConfig,
    pub filter: filter::FilterConfig,
    pub watch: watch::WatchConfig,
    /// `[[sinks]]`: where events go; empty means JSON lines on stdout.
    #[serde(deserialize_with = "sinks::deserialize_sinks")]
    pub sinks: Vec<SinkConfig>,
    pub telemetry: TelemetryConfig,
    pub audit: audit::AuditConfig,
}

/// `[process]`: the process table that gives events their parents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Processes kept in memory; the oldest are evicted (and counted) beyond it.
    pub table_size: usize,
    /// Ancestors listed on each event (`sensor.ancestors`), nearest first.
    pub ancestry_depth: usize,
    /// `process.hash.sha256` of every executable (see `enrich::exehash`).
    /// Off by default: it reads each distinct program once.
    pub hash_executables: bool,
    /// Executables larger than this are not hashed (counted as `too_large`).
    pub hash_max_bytes: u64,
    /// How long an exec event may wait for its executable's hash (never more
    /// than 100 ms in total per second); 0: never wait.
    pub hash_wait_ms: u64,
    /// A file whose hashing takes longer is given up (counted as an error).
    pub hash_timeout_ms: u64,
    /// Distinct executables whose hash is remembered.
    pub hash_cache_entries: usize,
}

/// `[ebpf]`: kernel capture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfConfig {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_bytes: u32,
    /// How often kernel loss and error counters are read and reported.
    pub counters_interval_ms: u64,
    /// After reading a batch of events, wait this long before reading again,
    /// so that a busy host is handled in batches rather than one wakeup per
    /// event. Higher: less CPU, more latency. 0 reads as soon as woken.
    pub batch_delay_ms: u64,
    /// Event kinds not to capture at all: their hooks are not attached, so
    /// they cost nothing. Any of [`DISABLEABLE_KINDS`].
    pub disable: Vec<String>,
    /// Trace ia32 syscalls (`int 0x80`, 32-bit programs) on x86_64. Off,
    /// the syscall dispatchers still tell them apart but report none:
    /// only for hosts whose kernel cannot run ia32 code anyway.
    pub ia32_syscalls: bool,
    /// Read the task behind each syscall event with plain loads where the
    /// kernel's verifier accepts them (5.11+), else with probe reads. Off:
    /// probe reads always (the same fields, at about twice the kernel time
    /// per event).
    pub direct_task_reads: bool,
}

/// Kinds that `ebpf.disable` accepts. Process lifecycle events are not
/// among them: every other event's process context is built from them.
pub const DISABLEABLE_KINDS: &[&str] = &["file_attr", "file_write", "cred", "net", "system"];

/// `[agent]`: identity of this sensor instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Where the sensor keeps state across restarts (its agent id).
    pub state_dir: PathBuf,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            table_size: 65_536,
            ancestry_depth: 8,
            hash_executables: false,
            hash_max_bytes: 64 << 20,
            hash_wait_ms: 10,
            hash_timeout_ms: 5000,
            hash_cache_entries: 4096,
        }
    }
}

impl ProcessConfig {
    fn validate_hashing(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        if self.hash_max_bytes == 0 {
            return invalid("process.hash_max_bytes", "must be greater than 0".into());
        }
        if self.hash_wait_ms > 100 {
            return invalid(
                "process.hash_wait_ms",
                format!(
                    "{} ms would hold events too long (maximum 100)",
                    self.hash_wait_ms
                ),
            );
        }
        if self.hash_timeout_ms == 0 {
            return invalid("process.hash_timeout_ms", "must be greater than 0".into());
        }
        if !(16..=1 << 20).contains(&self.hash_cache_entries) {
            return invalid(
                "process.hash_cache_entries",
                format!("{} is outside 16..=1048576", self.hash_cache_entries),
            );
        }
        Ok(())
    }

    /// The hasher's settings, when hashing is on.
    pub fn hashing(&self) -> Option<crate::enrich::exehash::HashConfig> {
        self.hash_executables
            .then(|| crate::enrich::exehash::HashConfig {
                max_bytes: self.hash_max_bytes,
                wait: std::time::Duration::from_millis(self.hash_wait_ms),
                timeout: std::time::Duration::from_millis(self.hash_timeout_ms),
                cache_entries: self.hash_cache_entries,
            })
    }
}

impl Default for EbpfConfig {
    fn default() -> Self {
        EbpfConfig {
            // 8 MiB holds ~200 worst-case (42 KiB) exec records and ~20,000
            // typical ones (~400 B): seconds of a 2-CPU exec storm. It is
            // mapped into the sensor twice, so it shows as 16 MiB of RSS.
            ring_buffer_bytes: 8 << 20,
            counters_interval_ms: 1000,
            // Measured by `cargo xtask bench`: per-event wakeups cost more
            // CPU than everything else together; 10 ms is invisible to users.
            batch_delay_ms: 10,
            disable: Vec::new(),
            // Off, int 0x80 would be a way around every syscall event.
            ia32_syscalls: true,
            direct_task_reads: true,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state_dir: PathBuf::from("/var/lib/sensor"),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text (the path in errors is left empty).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.audit.validate()?;
        let page = page_size();
        let rb = self.ebpf.ring_buffer_bytes;
        if !rb.is_power_of_two() || (rb as usize) < page {
            return Err(ConfigError::Invalid {
                key: "ebpf.ring_buffer_bytes",
                problem: format!("{rb} must be a power of two and at least the page size ({page})"),
            });
        }
        if self.ebpf.counters_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "ebpf.counters_interval_ms",
                problem: "must be greater than 0".into(),
            });
        }
        if self.ebpf.batch_delay_ms > 1000 {
            return Err(ConfigError::Invalid {
                key: "ebpf.batch_delay_ms",
                problem: format!(
                    "{} ms would hold events too long (maximum 1000)",
                    self.ebpf.batch_delay_ms
                ),
            });
        }
        for (i, kind) in self.ebpf.disable.iter().enumerate() {
            if !DISABLEABLE_KINDS.contains(&kind.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "ebpf.disable",
                    problem: format!(
                        "entry {i} `{kind}` is not a kind that can be disabled (one of: {})",
                        DISABLEABLE_KINDS.join(", ")
                    ),
                });
            }
        }
        self.filter.validate()?;
        self.watch.validate()?;
        if self.process.table_size < 1024 {
            return Err(ConfigError::Invalid {
                key: "process.table_size",
                problem: format!(
                    "{} is too small to hold a host's processes (minimum 1024)",
                    self.process.table_size
                ),
            });
        }
        if self.process.ancestry_depth > 64 {
            return Err(ConfigError::Invalid {
                key: "process.ancestry_depth",
                problem: format!(
                    "{} is more than the maximum of 64",
                    self.process.ancestry_depth
                ),
            });
        }
        self.process.validate_hashing()?;
        sinks::validate(&self.sinks)?;
        self.telemetry.metrics_socket()?;
        Ok(())
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Why the absolute `path` cannot be compared with path arguments as
/// written: the kernel compares their bytes, and leaves an argument with a
/// `.`, `..` or empty component (`//`) to the daemon, which makes it
/// normal before comparing it (`decode::lexically_normal`), so an entry
/// written with one would never match. None when it is normal.
fn not_normal(path: &[u8]) -> Option<String> {
    let normal = crate::source::ebpf::decode::lexically_normal(path);
    (normal != path).then(|| {
        format!(
            "must be written without `.`, `..` or empty components, as `{}`",
            String::from_utf8_lossy(&normal)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(
            Config::parse("").expect("empty config parses"),
            Config::default()
        );
    }

    #[test]
    fn a_full_file_round_trips_its_values() {
        let c = Config::parse(
            "[process]\ntable_size = 2048\nancestry_depth = 3\n\
             [ebpf]\nring_buffer_bytes = 1048576\ncounters_interval_ms = 250\nbatch_delay_ms = 0\n\
             [agent]\nstate_dir = \"/tmp/x\"\n",
        )
        .expect("valid config parses");
        assert_eq!(c.process.table_size, 2048);
        assert_eq!(c.process.ancestry_depth, 3);
        assert_eq!(c.ebpf.ring_buffer_bytes, 1 << 20);
        assert_eq!(c.ebpf.counters_interval_ms, 250);
        assert_eq!(c.ebpf.batch_delay_ms, 0);
        assert_eq!(c.agent.state_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[process]\ntable_sise = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("table_sise"),
            "error does not name the key: {err}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::parse("[ebpf]\nring_buffer_bytes = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ring_buffer_bytes"),
            "error does not name the key: {err}"
        );
    }

    #[test]
    fn bad_ring_buffer_size_names_the_key_and_problem() {
        let err = Config::parse("[ebpf]\nring_buffer_bytes = 1000000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ebpf.ring_buffer_bytes"), "{err}");
        assert!(err.contains("power of two"), "{err}");
    }

    #[test]
    fn disable_names_the_bad_kind() {
        let c = Config::parse("[ebpf]\ndisable = [\"cred\"]\n").expect("valid");
        assert_eq!(c.ebpf.disable, vec!["cred".to_owned()]);
        let err = Config::parse("[ebpf]\ndisable = [\"cred\", \"exec\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ebpf.disable") && err.contains("`exec`"),
            "{err}"
        );
    }

    #[test]
    fn filter_lists_are_checked_and_named() {
        let c = Config::parse(
            "[filter]\nignore_uids = [33]\nignore_executables = [\"/usr/sbin/cron\"]\n\
             ignore_cgroups = [\"/system.slice/x.service\"]\nignore_path_prefixes = [\"/proc/\"]\n",
        )
        .expect("valid");
        assert_eq!(c.filter.ignore_uids, vec![33]);
        let err = Config::parse("[filter]\nignore_executables = [\"bin/ls\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("filter.ignore_executables") && err.contains("absolute"),
            "{err}"
        );
        let err = Config::parse("[filter]\nignore_cgroups = [\"system.slice\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("filter.ignore_cgroups"), "{err}");
        let long = format!(
            "[filter]\nignore_path_prefixes = [\"/{}\"]\n",
            "x".repeat(80)
        );
        let err = Config::parse(&long).unwrap_err().to_string();
        assert!(
            err.contains("filter.ignore_path_prefixes") && err.contains("64 bytes"),
            "{err}"
        );
        let err = Config::parse("[filter]\nignore_path_prefixes = [\"/tmp/x/../\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("filter.ignore_path_prefixes") && err.contains("as `/tmp/`"),
            "{err}"
        );
        let err = Config::parse("[filter]\nignore_uid = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ignore_uid"), "{err}");
    }

    #[test]
    fn hashing_keys_parse_and_bad_values_are_named() {
        let c = Config::parse("[process]\nhash_executables = true\nhash_max_bytes = 1000\n")
            .expect("valid");
        let h = c.process.hashing().expect("on");
        assert_eq!(h.max_bytes, 1000);
        assert!(
            Config::default().process.hashing().is_none(),
            "off by default"
        );
        let err = Config::parse("[process]\nhash_wait_ms = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.hash_wait_ms"), "{err}");
        let err = Config::parse("[process]\nhash_max_bytes = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.hash_max_bytes"), "{err}");
        let err = Config::parse("[process]\nhash_cache_entries = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.hash_cache_entries"), "{err}");
        let err = Config::parse("[process]\nhash_executables = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hash_executables"), "{err}");
    }

    #[test]
    fn tiny_process_table_is_refused() {
        let err = Config::parse("[process]\ntable_size = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.table_size"), "{err}");
    }

    #[test]
    fn sinks_parse_as_an_array_of_tables() {
        let c = Config::parse(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:6514\"\nformat = \"rfc3164\"\n\
             [[sinks]]\nkind = \"file\"\npath = \"/var/log/sensor/events.jsonl\"\n",
        )
        .expect("valid sinks parse");
        assert_eq!(c.sinks.len(), 2);
        match &c.sinks[0] {
            SinkConfig::Syslog(s) => assert_eq!(s.format, sinks::SyslogFormat::Rfc3164),
            other => panic!("first sink is not syslog: {other:?}"),
        }
        assert_eq!(c.sinks[1].name(1), "file1");
    }

    #[test]
    fn bad_sinks_name_the_entry_and_key() {
        let err = |text: &str| Config::parse(text).unwrap_err().to_string();
        let e = err(
            "[[sinks]]\nkind = \"file\"\npath = \"/x\"\n[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://h\"\n",
        );
        assert!(
            e.contains("sinks[1].address") && e.contains("no port"),
            "{e}"
        );
        let e =
            err("[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://h:1\"\nformat = \"rfc9999\"\n");
        assert!(e.contains("sinks[0]") && e.contains("rfc9999"), "{e}");
        let e = err("[[sinks]]\nkind = \"kafka\"\n");
        assert!(e.contains("sinks[0]") && e.contains("kafka"), "{e}");
        let e = err(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tls://h:1\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }\n",
        );
        assert!(
            e.contains("sinks[0].tls.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = err("[[sinks]]\nkind = \"syslog\"\naddress = \"udp://h:1\"\nfacility = \"nope\"\n");
        assert!(e.contains("sinks[0].facility"), "{e}");
        let e = err("[[sinks]]\nkind = \"file\"\npath = \"/x\"\nrotate_byte = 5\n");
        assert!(e.contains("sinks[0]") && e.contains("rotate_byte"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Config::load(Path::new("/nonexistent/sensor.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/sensor.toml"), "{err}");
    }
}
