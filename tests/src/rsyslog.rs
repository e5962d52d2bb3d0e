//! A real rsyslog (Debian's `rsyslogd`) for the delivery tests: started in
//! the foreground with a generated config on a free loopback port, writing
//! every message it parsed to a file in a fixed layout the tests read, and
//! certificates made at test time with the `openssl` command.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What rsyslog listens on.
#[derive(Clone)]
pub enum Listen {
    Tcp,
    /// TLS with the gtls driver; with `client_auth`, clients must present a
    /// certificate signed by the test CA.
    Tls {
        certs: Certs,
        client_auth: bool,
    },
    /// A unix datagram socket at `<dir>/log.sock` (like /dev/log).
    Unix,
    Udp,
}

/// Test PKI: a CA, a server certificate for 127.0.0.1/localhost and a
/// client certificate, all PEM files in `dir`.
#[derive(Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (installed by `cargo xtask setup`): {e}"));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    pub fn generate(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).expect("cert dir");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=sensor test CA",
            ],
        );
        for (name, cn, san) in [
            (
                "server",
                "localhost",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ),
            (
                "client",
                "sensor-client",
                "subjectAltName=DNS:sensor-client",
            ),
        ] {
            let (key, csr, cert) = (
                format!("{name}-key.pem"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!("{san}\nbasicConstraints=CA:FALSE\n"),
            )
            .expect("ext file");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }
}

pub struct Rsyslog {
    pub dir: PathBuf,
    pub port: u16,
    pub output: PathBuf,
    listen: Listen,
    child: Option<Child>,
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone)]
pub struct Received {
    pub protocol_version: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub structured_data: String,
    pub facility: String,
    pub severity: String,
    pub json: Value,
}

impl Rsyslog {
    pub fn start(dir: &Path, listen: Listen) -> Rsyslog {
        Self::start_on(dir, listen, free_port())
    }

    pub fn start_on(dir: &Path, listen: Listen, port: u16) -> Rsyslog {
        assert!(
            Path::new("/usr/sbin/rsyslogd").exists(),
            "rsyslogd is missing: `cargo xtask setup` installs Debian's rsyslog and rsyslog-gnutls"
        );
        std::fs::create_dir_all(dir.join("work")).expect("rsyslog dir");
        let mut r = Rsyslog {
            dir: dir.to_owned(),
            port,
            output: dir.join("received.log"),
            listen,
            child: None,
        };
        r.restart();
        r
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }

    fn config(&self) -> String {
        let d = self.dir.display();
        let (global, input) = match &self.listen {
            Listen::Tcp => (
                String::new(),
                format!(
                    "module(load=\"imtcp\" maxSessions=\"100\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\")\n",
                    self.port
                ),
            ),
            Listen::Tls { certs, client_auth } => (
                format!(
                    "global(defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                     defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\")\n",
                    certs.ca.display(),
                    certs.server_cert.display(),
                    certs.server_key.display()
                ),
                format!(
                    "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{}\")\n\
                     input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\")\n",
                    if *client_auth {
                        "x509/certvalid"
                    } else {
                        "anon"
                    },
                    self.port
                ),
            ),
            Listen::Udp => (
                String::new(),
                // A large receive buffer: the default (208 KiB) overflows when
                // this test shares two cores with others' bursts, and UDP has
                // no resend (rsyslog sets it with SO_RCVBUFFORCE as root).
                format!(
                    "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{}\" rcvbufSize=\"16m\")\n",
                    self.port
                ),
            ),
            Listen::Unix => (
                String::new(),
                format!(
                    "module(load=\"imuxsock\" sysSock.use=\"off\")\ninput(type=\"imuxsock\" socket=\"{}\" useSpecialParser=\"off\" parseHostname=\"on\")\n",
                    self.socket().display()
                ),
            ),
        };
        // Tab-separated fields rsyslog parsed, the message last. JSON has
        // no raw tabs or newlines, so a line is one message.
        format!(
            "global(workDirectory=\"{d}/work\" maxMessageSize=\"256k\")\n{global}{input}\
             template(name=\"fields\" type=\"string\" \
             string=\"%protocol-version%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%syslogfacility-text%\\t%syslogseverity-text%\\t%msg%\\n\")\n\
             action(type=\"omfile\" file=\"{}\" template=\"fields\")\n",
            self.output.display()
        )
    }

    /// Starts (again) with the same port and output file.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "rsyslog is already running");
        let conf = self.dir.join("rsyslog.conf");
        std::fs::write(&conf, self.config()).expect("write rsyslog.conf");
        let pidfile = self.dir.join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let log = std::fs::File::create(self.dir.join("rsyslogd.stderr")).expect("rsyslog log");
        let child = Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match self.listen {
                Listen::Unix => self.socket().exists(),
                Listen::Udp => udp_bound(self.port),
                _ => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if ready {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rsyslogd exited with {status} at start:\n{}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen within 30 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }

    /// Stops rsyslog (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Every message received so far, parsed.
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        // rsyslog may be halfway through writing the last line: only lines
        // it has ended count (a cut JSON is not a broken message).
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.splitn(8, '\t').collect();
                assert_eq!(f.len(), 8, "rsyslog output line without all fields: {l}");
                let json = serde_json::from_str(f[7].trim_start())
                    .unwrap_or_else(|e| panic!("rsyslog's MSG is not the event's JSON ({e}): {l}"));
                Received {
                    protocol_version: f[0].into(),
                    app_name: f[1].into(),
                    procid: f[2].into(),
                    msgid: f[3].into(),
                    structured_data: f[4].into(),
                    facility: f[5].into(),
                    severity: f[6].into(),
                    json,
                }
            })
            .collect()
    }

    /// `event.sequence` of every message received so far, read from the
    /// structured data rsyslog parsed (fast: no JSON parsing of big logs).
    pub fn received_sequences(&self) -> std::collections::BTreeSet<u64> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        // Ended lines only, as in `received`: a cut line could cut a number.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter_map(|l| {
                let sd = l.split('\t').nth(4)?;
                sd.split("sequence=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Waits until `pred` holds for the received messages; panics naming `what`.
    pub fn wait_until(
        &self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if Instant::now() > deadline {
                let udp = match self.listen {
                    Listen::Udp => format!(
                        " (this host's UDP receive-buffer drops so far: {})",
                        udp_rcvbuf_errors()
                    ),
                    _ => String::new(),
                };
                panic!(
                    "rsyslog did not receive {what} within {wait:?} ({} messages){udp}:\n{}",
                    got.len(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a UDP socket is bound to 127.0.0.1:`port` (UDP has no
/// handshake to probe with).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
    })
}

/// The kernel's count of UDP datagrams dropped for a full receive buffer
/// (`Udp: RcvbufErrors` in /proc/net/snmp), for failure messages.
fn udp_rcvbuf_errors() -> String {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return "unknown".into();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .map_or_else(|| "unknown".into(), |(_, v)| v.to_owned())
}

/// `event.sequence` of a received message's JSON.
pub fn sequence(r: &Received) -> u64 {
    crate::at(&r.json, "event.sequence")
        .as_u64()
        .unwrap_or_else(|| panic!("no event.sequence in {}", r.json))
}
