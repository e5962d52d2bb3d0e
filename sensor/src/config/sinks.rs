//! `[[sinks]]`: where events go. Several at once ("tee": keep a local copy
//! and ship); none configured means JSON lines on stdout.
//!
//! Each entry is checked at load time, and a mistake names the entry and
//! key (`sinks[1].address`) with the problem, so that a bad address or an
//! unreadable certificate stops the sensor at start rather than at the
//! first event.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// One `[[sinks]]` table, chosen by its `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkConfig {
    Stdout(StdoutSink),
    File(FileSink),
    Syslog(SyslogSink),
    Http(HttpSink),
}

/// `kind = "stdout"`: JSON lines on standard output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSink {
    pub name: Option<String>,
}

/// `kind = "file"`: JSON lines appended to a file (mode 0600), rotated by
/// size and age, with a bounded number of rotated files kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    pub name: Option<String>,
    pub path: PathBuf,
    /// Rotate when the file reaches this size. 0: never by size.
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// Rotate when the file is older than this. 0: never by age.
    #[serde(default)]
    pub rotate_seconds: u64,
    /// Rotated files kept (`events.jsonl.1` is the newest); older are deleted.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

/// `kind = "syslog"`: RFC 5424 or RFC 3164 messages whose text is the
/// event's JSON, over a unix socket, UDP, TCP or TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSink {
    pub name: Option<String>,
    /// `unix:///dev/log`, `udp://host:port`, `tcp://host:port`, `tls://host:port`.
    pub address: String,
    #[serde(default)]
    pub format: SyslogFormat,
    /// Syslog facility name (`auth`, `authpriv`, `daemon`, `local0`…).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// APP-NAME / TAG.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Bytes a message may have; a longer event is shortened to fit (its
    /// cut fields named in `sensor.truncated`). Default: the largest UDP
    /// payload (65507) for `udp://` and `unix://`, no limit for streams.
    /// Set it to the collector's own limit (rsyslog's `maxMessageSize`,
    /// 8 KiB unless raised), which would otherwise cut the JSON itself.
    pub max_message_bytes: Option<usize>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// The largest UDP payload over IPv4.
pub const DATAGRAM_MAX: usize = 65_507;
/// RFC 5424 §6.1: receivers should accept messages of 2048 bytes.
pub const MESSAGE_MIN: usize = 2048;

impl SyslogSink {
    /// The message limit in force for this sink at `address`.
    pub fn message_limit(&self, address: &SyslogAddress) -> Option<usize> {
        let datagram = matches!(address, SyslogAddress::Udp(_) | SyslogAddress::Unix(_));
        self.max_message_bytes.or(datagram.then_some(DATAGRAM_MAX))
    }
}

/// `kind = "http"`: batches of events POSTed to a collector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSink {
    pub name: Option<String>,
    /// `http://` or `https://` URL the batches are POSTed to (for
    /// Elasticsearch the `_bulk` endpoint, for Splunk `/services/collector/event`).
    pub url: String,
    #[serde(default)]
    pub format: HttpFormat,
    /// Compress bodies with gzip (`Content-Encoding: gzip`).
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// `Authorization: Bearer …` (`Splunk …` for `splunk_hec`).
    pub bearer_token: Option<String>,
    /// Basic authentication.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Elasticsearch index of the `_bulk` action lines.
    #[serde(default = "default_index")]
    pub index: String,
    /// Events per request at most.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormat {
    /// One event's JSON per line.
    #[default]
    Ndjson,
    /// Elasticsearch `_bulk`: an `index` action line before each event.
    Elasticsearch,
    /// Splunk HTTP Event Collector: `{"time":…,"host":…,"event":{…}}` objects.
    SplunkHec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFormat {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// `tls = { … }` of a `tls://` sink. The server is verified by default,
/// against `ca_file` (default: the system's bundle).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca_file: PathBuf,
    /// Client certificate and key (PEM) for servers that ask for one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Name checked against the server's certificate; default: the host
    /// of the address.
    pub server_name: Option<String>,
    /// `false` accepts any server certificate: for tests only; logged.
    pub verify: bool,
}

/// How a network sink holds events it has not delivered yet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Bytes of encoded events waiting in memory for the sink's task to
    /// write them to the spool. Beyond it new events are dropped (counted).
    pub queue_bytes: usize,
    /// Directory of the on-disk spool; default `<state_dir>/spool/<name>`.
    pub spool_dir: Option<PathBuf>,
    /// Spool size bound; when reached `when_full` decides what goes.
    pub spool_bytes: u64,
    pub when_full: WhenFull,
    /// Retry backoff: first wait, doubled per failure up to the maximum.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// After a stream connection fails, records sent in this window before
    /// the failure are sent again: TCP accepted them, but the collector may
    /// not have read them (at-least-once; duplicates are possible).
    pub replay_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Delete the oldest undelivered spool segment to make room.
    #[default]
    DropOldest,
    /// Refuse new events until the spool drains.
    DropNewest,
}

fn default_rotate_bytes() -> u64 {
    100 << 20
}
fn default_keep() -> u32 {
    5
}
fn default_true() -> bool {
    true
}
fn default_index() -> String {
    "sensor".to_owned()
}
fn default_batch_events() -> usize {
    500
}
fn default_facility() -> String {
    "authpriv".to_owned()
}
fn default_app_name() -> String {
    "sensor".to_owned()
}

/// Debian's (and most distributions') bundle of trusted CAs.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_file: PathBuf::from(SYSTEM_CA_FILE),
            cert_file: None,
            key_file: None,
            server_name: None,
            verify: true,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_bytes: 32 << 20,
            spool_dir: None,
            spool_bytes: 1 << 30,
            when_full: WhenFull::DropOldest,
            retry_initial_ms: 200,
            retry_max_ms: 10_000,
            replay_ms: 3_000,
        }
    }
}

/// Where a syslog sink sends, parsed from `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    Unix(PathBuf),
    Udp(String),
    Tcp(String),
    Tls(String),
}

impl SyslogAddress {
    pub fn parse(s: &str) -> Result<SyslogAddress, String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!("`{s}` has no scheme (use unix://, udp://, tcp:// or tls://)")
        })?;
        let host_port = |rest: &str| -> Result<String, String> {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}` has no port (e.g. {scheme}://127.0.0.1:6514)"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("`{s}` has no host"));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(rest.to_owned()),
                _ => Err(format!("`{s}`: `{port}` is not a port number")),
            }
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogAddress::Unix(PathBuf::from(rest))),
            "unix" => Err(format!(
                "`{s}`: a unix socket needs an absolute path (unix:///dev/log)"
            )),
            "udp" => host_port(rest).map(SyslogAddress::Udp),
            "tcp" => host_port(rest).map(SyslogAddress::Tcp),
            "tls" => host_port(rest).map(SyslogAddress::Tls),
            other => Err(format!(
                "`{s}`: unknown scheme `{other}` (use unix://, udp://, tcp:// or tls://)"
            )),
        }
    }

    /// The host part of a `host:port` address, for TLS server names.
    pub fn host(&self) -> Option<&str> {
        match self {
            SyslogAddress::Unix(_) => None,
            SyslogAddress::Udp(a) | SyslogAddress::Tcp(a) | SyslogAddress::Tls(a) => a
                .rsplit_once(':')
                .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']')),
        }
    }
}

/// RFC 5424 facility numbers by name.
pub fn facility_code(name: &str) -> Option<u8> {
    const NAMES: &[&str] = &[
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

impl SinkConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::File(_) => "file",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::Http(_) => "http",
        }
    }

    /// The sink's name in logs, metrics and loss events; also names its
    /// spool directory, so it should stay stable across config edits.
    pub fn name(&self, index: usize) -> String {
        let given = match self {
            SinkConfig::Stdout(s) => &s.name,
            SinkConfig::File(s) => &s.name,
            SinkConfig::Syslog(s) => &s.name,
            SinkConfig::Http(s) => &s.name,
        };
        given
            .clone()
            .unwrap_or_else(|| format!("{}{index}", self.kind()))
    }
}

/// Deserializes `sinks` entry by entry so that an error names its index:
/// toml's own message for an array of tables gives only a line number.
pub(super) fn deserialize_sinks<'de, D>(d: D) -> Result<Vec<SinkConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Vec<toml::Table> = Deserialize::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            SinkConfig::deserialize(toml::Value::Table(t))
                .map_err(|e| serde::de::Error::custom(format!("sinks[{i}]: {}", e.message())))
        })
        .collect()
}

fn invalid(i: usize, key: &str, problem: String) -> ConfigError {
    ConfigError::InvalidSink {
        key: format!("sinks[{i}].{key}"),
        problem,
    }
}

fn readable(i: usize, key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| invalid(i, key, format!("cannot read {}: {e}", path.display())))
}

pub(super) fn validate(sinks: &[SinkConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, sink) in sinks.iter().enumerate() {
        let name = sink.name(i);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                i,
                "name",
                format!("`{name}`: use letters, digits, `-` and `_`"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(invalid(
                i,
                "name",
                format!("`{name}` is used by another sink"),
            ));
        }
        match sink {
            SinkConfig::Stdout(_) => {}
            SinkConfig::File(f) => {
                if !f.path.is_absolute() {
                    return Err(invalid(
                        i,
                        "path",
                        format!("{} is not an absolute path", f.path.display()),
                    ));
                }
                if f.path.file_name().is_none() {
                    return Err(invalid(
                        i,
                        "path",
                        format!("{} names no file", f.path.display()),
                    ));
                }
            }
            SinkConfig::Syslog(s) => {
                let addr =
                    SyslogAddress::parse(&s.address).map_err(|p| invalid(i, "address", p))?;
                if facility_code(&s.facility).is_none() {
                    return Err(invalid(
                        i,
                        "facility",
                        format!("`{}` is not a syslog facility", s.facility),
                    ));
                }
                if s.app_name.is_empty()
                    || s.app_name.len() > 48
                    || !s.app_name.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(invalid(
                        i,
                        "app_name",
                        "must be 1 to 48 printable ASCII characters".into(),
                    ));
                }
                if let Some(max) = s.max_message_bytes {
                    let top = if matches!(addr, SyslogAddress::Udp(_)) {
                        DATAGRAM_MAX
                    } else {
                        usize::MAX
                    };
                    if !(MESSAGE_MIN..=top).contains(&max) {
                        let range = if top == usize::MAX {
                            format!("{MESSAGE_MIN} or more")
                        } else {
                            format!("within {MESSAGE_MIN}..={top} over UDP")
                        };
                        return Err(invalid(
                            i,
                            "max_message_bytes",
                            format!("{max} is not {range}"),
                        ));
                    }
                }
                if matches!(addr, SyslogAddress::Tls(_)) {
                    validate_tls(i, &s.tls)?;
                }
                validate_delivery(i, &s.delivery)?;
            }
            SinkConfig::Http(h) => {
                let https = if h.url.starts_with("https://") {
                    true
                } else if h.url.starts_with("http://") {
                    false
                } else {
                    return Err(invalid(
                        i,
                        "url",
                        format!("`{}`: use an http:// or https:// URL", h.url),
                    ));
                };
                let rest = h.url.split_once("://").map_or("", |(_, r)| r);
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(invalid(i, "url", format!("`{}` has no host", h.url)));
                }
                if https {
                    validate_tls(i, &h.tls)?;
                }
                if h.bearer_token.is_some() && (h.username.is_some() || h.password.is_some()) {
                    return Err(invalid(
                        i,
                        "bearer_token",
                        "use either bearer_token or username/password".into(),
                    ));
                }
                if h.username.is_some() != h.password.is_some() {
                    return Err(invalid(
                        i,
                        "password",
                        "username and password go together".into(),
                    ));
                }
                if h.batch_events == 0 || h.batch_events > 100_000 {
                    return Err(invalid(
                        i,
                        "batch_events",
                        format!("{} is not within 1..=100000", h.batch_events),
                    ));
                }
                validate_delivery(i, &h.delivery)?;
            }
        }
    }
    Ok(())
}

fn validate_tls(i: usize, tls: &TlsConfig) -> Result<(), ConfigError> {
    if tls.verify {
        readable(i, "tls.ca_file", &tls.ca_file)?;
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            readable(i, "tls.cert_file", c)?;
            readable(i, "tls.key_file", k)
        }
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid(
            i,
            "tls.key_file",
            "missing: cert_file needs it".into(),
        )),
        (None, Some(_)) => Err(invalid(
            i,
            "tls.cert_file",
            "missing: key_file needs it".into(),
        )),
    }
}

fn validate_delivery(i: usize, d: &DeliveryConfig) -> Result<(), ConfigError> {
    if d.queue_bytes < 64 << 10 {
        return Err(invalid(
            i,
            "delivery.queue_bytes",
            format!("{} is below the minimum of 65536", d.queue_bytes),
        ));
    }
    if d.spool_bytes < 1 << 20 {
        return Err(invalid(
            i,
            "delivery.spool_bytes",
            format!("{} is below the minimum of 1048576", d.spool_bytes),
        ));
    }
    if d.retry_initial_ms == 0 || d.retry_max_ms < d.retry_initial_ms {
        return Err(invalid(
            i,
            "delivery.retry_max_ms",
            format!(
                "retry_initial_ms ({}) must be > 0 and <= retry_max_ms ({})",
                d.retry_initial_ms, d.retry_max_ms
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_by_scheme() {
        assert_eq!(
            SyslogAddress::parse("unix:///dev/log"),
            Ok(SyslogAddress::Unix("/dev/log".into()))
        );
        assert_eq!(
            SyslogAddress::parse("tcp://127.0.0.1:6514"),
            Ok(SyslogAddress::Tcp("127.0.0.1:6514".into()))
        );
        assert_eq!(
            SyslogAddress::parse("tls://[::1]:6514").unwrap().host(),
            Some("::1")
        );
        assert!(
            SyslogAddress::parse("tcp://127.0.0.1")
                .unwrap_err()
                .contains("no port")
        );
        assert!(
            SyslogAddress::parse("tcp://127.0.0.1:99999")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(
            SyslogAddress::parse("http://x:1")
                .unwrap_err()
                .contains("unknown scheme")
        );
        assert!(
            SyslogAddress::parse("127.0.0.1:514")
                .unwrap_err()
                .contains("no scheme")
        );
    }

    fn syslog(address: &str, max: Option<usize>) -> SyslogSink {
        let toml = format!("address = \"{address}\"\n");
        SyslogSink {
            max_message_bytes: max,
            ..toml::from_str(&toml).unwrap()
        }
    }

    #[test]
    fn datagram_sinks_have_a_message_limit_by_default() {
        let limit = |a: &str, max| syslog(a, max).message_limit(&SyslogAddress::parse(a).unwrap());
        assert_eq!(limit("udp://127.0.0.1:514", None), Some(DATAGRAM_MAX));
        assert_eq!(limit("unix:///dev/log", None), Some(DATAGRAM_MAX));
        assert_eq!(limit("tcp://127.0.0.1:514", None), None);
        assert_eq!(limit("tcp://127.0.0.1:514", Some(8192)), Some(8192));
    }

    #[test]
    fn a_message_limit_out_of_range_is_named() {
        let check = |a: &str, max| validate(&[SinkConfig::Syslog(syslog(a, Some(max)))]);
        assert!(check("udp://127.0.0.1:514", 8192).is_ok());
        assert!(check("tcp://127.0.0.1:514", 1 << 20).is_ok());
        for (a, max) in [
            ("udp://127.0.0.1:514", 70_000),
            ("tcp://127.0.0.1:514", 100),
        ] {
            let e = check(a, max).unwrap_err().to_string();
            assert!(
                e.contains("sinks[0].max_message_bytes") && e.contains(&max.to_string()),
                "{e}"
            );
        }
    }

    #[test]
    fn facilities_have_their_rfc_numbers() {
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("authpriv"), Some(10));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("nope"), None);
    }
}
