//! An HTTP collector for the delivery tests: accepts POSTs on a loopback
//! port, keeps every request (headers and gunzipped body), and can answer
//! 503 with `Retry-After` for as long as a test wants.
//!
//! Hand-written over std's TcpListener (and rustls for HTTPS) rather than a
//! server crate: it must show the exact bytes the sensor sent, and HTTP/1.1
//! with Content-Length bodies is all the sensor's client speaks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as sent (maybe gzip'd).
    pub raw_body: Vec<u8>,
    /// The body after `Content-Encoding: gzip` was undone.
    pub body: Vec<u8>,
    /// The status this request was answered with.
    pub status: u16,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
    unavailable: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts listening; answers 503 while `unavailable` is set.
    pub fn start(unavailable: bool) -> Receiver {
        Self::start_with(unavailable, None)
    }

    /// HTTPS with the test PKI's server certificate; clients must present
    /// a certificate signed by the test CA.
    pub fn start_tls(certs: &crate::rsyslog::Certs) -> Receiver {
        Self::start_with(false, Some(Arc::new(server_config(certs))))
    }

    fn start_with(unavailable: bool, tls: Option<Arc<rustls::ServerConfig>>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let flag = Arc::new(AtomicBool::new(unavailable));
        let (s, f) = (state.clone(), flag.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, f, tls) = (s.clone(), f.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(conn, &s, &f),
                    Some(cfg) => {
                        let Ok(server) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(server, conn), &s, &f)
                    }
                });
            }
        });
        Receiver {
            port,
            state,
            unavailable: flag,
        }
    }

    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("lock").requests.clone()
    }

    pub fn wait_until(
        &self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self.requests();
            if pred(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get {what} within {wait:?} ({} requests)",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn server_config(certs: &crate::rsyslog::Certs) -> rustls::ServerConfig {
    let pem_certs = |p: &std::path::Path| -> Vec<rustls::pki_types::CertificateDer<'static>> {
        let f = std::fs::File::open(p).expect("cert file");
        rustls_pemfile::certs(&mut BufReader::new(f))
            .collect::<Result<_, _>>()
            .expect("PEM certs")
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&certs.ca) {
        roots.add(c).expect("CA cert");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let key = rustls_pemfile::private_key(&mut BufReader::new(
        std::fs::File::open(&certs.server_key).expect("key"),
    ))
    .expect("PEM key")
    .expect("a key");
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem_certs(&certs.server_cert), key)
        .expect("server config")
}

fn serve<S: Read + Write>(conn: S, state: &Mutex<State>, unavailable: &AtomicBool) {
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut raw_body = vec![0u8; len];
        if r.read_exact(&mut raw_body).is_err() {
            return;
        }
        let body = if headers.get("content-encoding").is_some_and(|e| e == "gzip") {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(&raw_body[..])
                .read_to_end(&mut d)
                .expect("body is valid gzip");
            d
        } else {
            raw_body.clone()
        };
        let refuse = unavailable.load(Ordering::SeqCst);
        let status = if refuse { 503 } else { 200 };
        state.lock().expect("lock").requests.push(Request {
            method,
            path,
            headers,
            raw_body,
            body,
            status,
        });
        let reply = if refuse {
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy"
                .to_owned()
        } else {
            let body = "{\"errors\":false,\"items\":[]}";
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if r.get_mut()
            .write_all(reply.as_bytes())
            .and_then(|()| r.get_mut().flush())
            .is_err()
        {
            return;
        }
    }
}
