//! The HTTP collector transport: a batch of records is one POST (gzip'd
//! if configured). A 2xx answer is the collector's acknowledgement; 429 and
//! 503 mean "later" and their `Retry-After` is honoured; anything else is
//! retried with backoff, the records staying in the spool (a 401 from a
//! wrong token must not throw events away).

use std::io::Write as _;
use std::time::Duration;

use crate::config::sinks::{HttpFormat, HttpSink};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct HttpSender {
    client: reqwest::Client,
    url: String,
    format: HttpFormat,
    gzip: bool,
    auth: Auth,
}

enum Auth {
    None,
    Header(String),
    Basic { username: String, password: String },
}

/// Why a batch was not accepted; `retry_after` when the server said.
#[derive(Debug)]
pub struct Refused {
    pub reason: String,
    pub retry_after: Option<Duration>,
}

impl HttpSender {
    pub fn new(cfg: &HttpSink) -> Result<HttpSender, String> {
        // reqwest builds a TLS config even for http:// URLs and, built
        // without a provider of its own, needs the process default: ring,
        // as everywhere else. An error only means it is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("sensor/", env!("CARGO_PKG_VERSION")));
        if cfg.url.starts_with("https://") {
            let mut tls = super::tls::client_config(&cfg.tls)?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.use_preconfigured_tls(tls);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let auth = match (&cfg.bearer_token, &cfg.username, &cfg.password) {
            (Some(t), _, _) if cfg.format == HttpFormat::SplunkHec => {
                Auth::Header(format!("Splunk {t}"))
            }
            (Some(t), _, _) => Auth::Header(format!("Bearer {t}")),
            (None, Some(u), Some(p)) => Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            },
            _ => Auth::None,
        };
        Ok(HttpSender {
            client,
            url: cfg.url.clone(),
            format: cfg.format,
            gzip: cfg.gzip,
            auth,
        })
    }

    pub async fn send(&self, records: &[(u64, Vec<u8>)]) -> Result<(), Refused> {
        let mut body = Vec::with_capacity(records.iter().map(|r| r.1.len()).sum());
        for (_, r) in records {
            body.extend_from_slice(r);
        }
        let content_type = match self.format {
            HttpFormat::Ndjson | HttpFormat::Elasticsearch => "application/x-ndjson",
            HttpFormat::SplunkHec => "application/json",
        };
        let mut req = self
            .client
            .post(&self.url)
            .header("Content-Type", content_type);
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            let _ = gz.write_all(&body);
            body = gz.finish().map_err(|e| Refused {
                reason: format!("gzip: {e}"),
                retry_after: None,
            })?;
            req = req.header("Content-Encoding", "gzip");
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Header(h) => req.header("Authorization", h),
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
        };
        let resp = req.body(body).send().await.map_err(|e| Refused {
            reason: format!("{e}"),
            retry_after: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            if self.format == HttpFormat::Elasticsearch {
                let text = resp.text().await.unwrap_or_default();
                report_bulk_item_errors(&text);
            }
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        Err(Refused {
            reason: format!("HTTP {status}: {snippet}"),
            retry_after,
        })
    }
}

/// A `_bulk` answer can be 200 with some items refused. Duplicates (409,
/// from a resend after an outage) are expected; anything else is logged:
/// resending would fail the same way.
fn report_bulk_item_errors(text: &str) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if v["errors"] != true {
        return;
    }
    let failed: Vec<&serde_json::Value> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_object()?.values().next())
                .filter(|r| r["status"].as_u64().is_some_and(|s| s >= 300 && s != 409))
                .collect()
        })
        .unwrap_or_default();
    if let Some(first) = failed.first() {
        tracing::error!(count = failed.len(), first = %first, "Elasticsearch refused events of a bulk request");
    }
}
