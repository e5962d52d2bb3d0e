//! A container's name, image, labels and Kubernetes pod, from the files its
//! runtime keeps on the host.
//!
//! The cgroup path gives only the id (see `container`). Everything else is
//! read without talking to a daemon where the runtime leaves it on disk:
//! - the OCI bundle's `config.json`, whose `annotations` carry what CRI
//!   runtimes know about the pod (`io.kubernetes.*`) and what podman was
//!   given with `--annotation`: podman and CRI-O keep it in the container's
//!   `userdata`, containerd in its task directory, and runc's `state.json`
//!   names the bundle of anything else it runs;
//! - podman's `containers.json` (containers/storage): the name and the
//!   image name, which are not in the bundle;
//! - docker's `config.v2.json`: the name, image and labels, the same shape
//!   as the Engine API's `GET /containers/<id>/json`, which is asked (with
//!   a short deadline) when the file is not there;
//! - podman's `--label`s, which only its database holds: from its API
//!   service (`/run/podman/podman.sock`, Docker-compatible inspect) when
//!   one runs.
//!
//! Reads are a few KB from tmpfs or local disk, so they can run on the
//! event path; [`RuntimeCache`] makes each container cost one lookup per
//! refresh interval, and a failed lookup is retried only after a pause.
//!
//! Every value here was chosen by whoever started the container and is
//! kept byte-exact (as the runtime recorded it); how many labels are kept
//! is bounded.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::container::ContainerRef;
use crate::event::{Labels, Text};

/// Labels kept per container; the rest are dropped and the event says so.
pub const MAX_LABELS: usize = 64;
/// Bytes kept of one label key or value.
pub const MAX_LABEL_BYTES: usize = 4096;
/// Bytes of all labels kept together: every event of the container
/// carries them.
pub const MAX_LABELS_TOTAL: usize = 16 << 10;
/// Bytes read of one runtime file at most: bundles are a few KB, podman's
/// `containers.json` grows by ~600 bytes per container.
const MAX_FILE_BYTES: u64 = 8 << 20;
/// Users' runtime directories looked in, at most (rootless containers).
const MAX_USERS: usize = 256;

/// What the runtime knows about a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub name: Option<Text>,
    pub image: Option<Text>,
    /// In the order found; keys unique. Shared with every event.
    pub labels: Labels,
    /// Labels beyond [`MAX_LABELS`] or [`MAX_LABELS_TOTAL`], or cut at
    /// [`MAX_LABEL_BYTES`].
    pub labels_truncated: bool,
    pub pod: Option<Pod>,
    /// The runtime's API service runs (its socket is there) but did not
    /// answer within the deadline: the labels only it knows are missing,
    /// so the cache asks again after [`RETRY`] rather than [`REFRESH`].
    pub api_missed: bool,
}

/// A Kubernetes pod, from CRI annotations or labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    pub name: Option<Text>,
    pub namespace: Option<Text>,
    pub uid: Option<Text>,
    /// The container's name in the pod spec.
    pub container_name: Option<Text>,
}

/// Annotation keys of each pod field: the kubelet's own (dockershim labels,
/// CRI-O and podman annotations), then containerd's CRI plugin.
const POD_NAME: &[&str] = &["io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name"];
const POD_NAMESPACE: &[&str] = &[
    "io.kubernetes.pod.namespace",
    "io.kubernetes.cri.sandbox-namespace",
];
const POD_UID: &[&str] = &["io.kubernetes.pod.uid", "io.kubernetes.cri.sandbox-uid"];
const POD_CONTAINER: &[&str] = &[
    "io.kubernetes.container.name",
    "io.kubernetes.cri.container-name",
];
const IMAGE: &[&str] = &[
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
];

/// Annotations a runtime writes for its own bookkeeping: not the user's
/// labels, so not repeated in `container.labels`.
const BOOKKEEPING: &[&str] = &[
    "io.podman.annotations.",
    "io.kubernetes.cri-o.",
    "io.kubernetes.cri.",
    "io.container.manager",
];

/// Where the runtimes keep their files; a directory other than `/` in tests.
#[derive(Clone, Debug)]
pub struct Lookup {
    root: PathBuf,
    /// For each runtime API exchange (docker_api::DEADLINE).
    api_deadline: std::time::Duration,
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup::with_root("/")
    }
}

impl Lookup {
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Lookup {
            root: root.into(),
            api_deadline: docker_api::DEADLINE,
        }
    }

    #[cfg(test)]
    pub fn with_api_deadline(self, api_deadline: std::time::Duration) -> Self {
        Lookup {
            api_deadline,
            ..self
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// What the runtime's files say about `c`; `None` when no file knows it.
    pub fn find(&self, c: &ContainerRef) -> Option<RuntimeInfo> {
        let id = &c.id;
        let docker = self.read_json(&format!("/var/lib/docker/containers/{id}/config.v2.json"));
        if let Some(info) = docker.as_ref().and_then(from_docker) {
            return Some(info);
        }
        if c.runtime == "docker" {
            // Another data root: the daemon knows (see `docker_api`).
            if let Some(info) =
                docker_api::inspect(&self.path("/run/docker.sock"), id, self.api_deadline)
                    .as_ref()
                    .and_then(from_docker)
            {
                return Some(info);
            }
        }
        let bundle = self.bundle(id);
        let annotations = bundle
            .as_ref()
            .map(|(_, b)| annotations(b))
            .unwrap_or_default();
        let storage = self.podman_storage(id, bundle.as_ref().map(|(dir, _)| dir.as_str()));
        // podman keeps `--label`s in its database only; its API service,
        // when one runs, answers the Docker-compatible inspect.
        let socket = self.path("/run/podman/podman.sock");
        let api = (c.runtime == "podman")
            .then(|| docker_api::inspect(&socket, id, self.api_deadline))
            .flatten();
        if annotations.is_empty() && storage.is_none() {
            return api.as_ref().and_then(from_docker);
        }
        let mut info = RuntimeInfo::default();
        let mut labels = LabelSet::default();
        for (k, v) in api.as_ref().map(docker_labels).unwrap_or_default() {
            labels.push(&k, &v);
        }
        for (k, v) in &annotations {
            if !BOOKKEEPING.iter().any(|b| k.starts_with(b)) {
                labels.push(k, v);
            }
        }
        // CRI-O records the pod spec's container labels as one JSON object.
        if let Some(Value::Object(l)) = get(&annotations, &["io.kubernetes.cri-o.Labels"])
            .and_then(|s| serde_json::from_str(s).ok())
        {
            for (k, v) in &l {
                if let Some(v) = v.as_str() {
                    labels.push(k, v);
                }
            }
        }
        (info.labels, info.labels_truncated) = labels.finish();
        let (name, image) = storage.unwrap_or_default();
        info.pod = pod(&annotations);
        info.name = name.or_else(|| info.pod.as_ref().and_then(|p| p.container_name.clone()));
        info.image = image.or_else(|| get(&annotations, IMAGE).map(Text::from));
        // A service slow to answer (the first request after its start, a
        // loaded host) must not cost the container its labels until the
        // next refresh.
        info.api_missed = c.runtime == "podman" && api.is_none() && socket.exists();
        Some(info)
    }

    /// The OCI bundle (its directory and `config.json`) of container `id`,
    /// wherever its runtime put it.
    fn bundle(&self, id: &str) -> Option<(String, Value)> {
        let direct = [
            // podman (root), and CRI-O, whose userdata is under its run root.
            format!("/var/lib/containers/storage/overlay-containers/{id}/userdata"),
            format!("/run/containers/storage/overlay-containers/{id}/userdata"),
            // containerd's v2 shim: one task directory per namespace.
            format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}"),
            format!("/run/containerd/io.containerd.runtime.v2.task/moby/{id}"),
            format!("/run/containerd/io.containerd.runtime.v2.task/default/{id}"),
        ];
        let config = |dir: &str| {
            self.read_json(&format!("{dir}/config.json"))
                .map(|v| (dir.to_owned(), v))
        };
        if let Some(found) = direct.iter().find_map(|d| config(d)) {
            return Some(found);
        }
        // Otherwise the OCI runtime's state names the bundle: runc's
        // `state.json` as a "bundle=" config label, crun's `status` as
        // `bundle`. Rootless podman's runtimes keep their state under the
        // user's runtime directory.
        let mut roots: Vec<String> = ["/run/runc", "/run/crun", "/run/containerd/runc/k8s.io"]
            .into_iter()
            .chain([
                "/run/containerd/runc/default",
                "/run/docker/runtime-runc/moby",
            ])
            .map(str::to_owned)
            .collect();
        if let Ok(users) = std::fs::read_dir(self.path("/run/user")) {
            for uid in users
                .flatten()
                .take(MAX_USERS)
                .filter_map(|e| e.file_name().into_string().ok())
            {
                if uid.bytes().all(|b| b.is_ascii_digit()) {
                    roots.push(format!("/run/user/{uid}/runc"));
                    roots.push(format!("/run/user/{uid}/crun"));
                }
            }
        }
        let bundle = roots.iter().find_map(|root| {
            if let Some(state) = self.read_json(&format!("{root}/{id}/state.json")) {
                let labels = state["config"]["labels"].as_array()?;
                let dir = labels
                    .iter()
                    .filter_map(Value::as_str)
                    .find_map(|l| l.strip_prefix("bundle="))?;
                return Some(dir.to_owned());
            }
            let status = self.read_json(&format!("{root}/{id}/status"))?;
            status["bundle"].as_str().map(str::to_owned)
        })?;
        // Read through the same root, so tests stay inside theirs.
        config(&bundle)
    }

    /// Name and image name from podman's `containers.json`: root's, or the
    /// one next to the container's bundle (rootless storage is in the
    /// user's home: `…/overlay-containers/<id>/userdata`).
    fn podman_storage(
        &self,
        id: &str,
        bundle: Option<&str>,
    ) -> Option<(Option<Text>, Option<Text>)> {
        let beside = bundle
            .and_then(|b| b.strip_suffix(&format!("overlay-containers/{id}/userdata")))
            .map(|storage| format!("{storage}overlay-containers/containers.json"));
        let all = ["/var/lib/containers/storage/overlay-containers/containers.json".to_owned()]
            .into_iter()
            .chain(beside)
            .find_map(|p| {
                let all = self.read_json(&p)?;
                all.as_array()?
                    .iter()
                    .find(|c| c["id"].as_str() == Some(id))
                    .cloned()
            });
        let c = all?;
        // `metadata` is itself JSON, as a string: {"image-name":…,"name":…}.
        let meta: Value = c["metadata"]
            .as_str()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(Value::Null);
        let name = meta["name"]
            .as_str()
            .or_else(|| c["names"][0].as_str())
            .map(Text::from);
        let image = meta["image-name"].as_str().map(Text::from);
        Some((name, image))
    }

    /// A regular file's JSON. Opened non-blocking: a rootless runtime's
    /// state is in a directory its user owns, and a FIFO there must not
    /// stall the event path.
    fn read_json(&self, p: &str) -> Option<Value> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.path(p))
            .ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut buf = Vec::new();
        file.take(MAX_FILE_BYTES).read_to_end(&mut buf).ok()?;
        serde_json::from_slice(&buf).ok()
    }
}
/// Docker's `config.v2.json`, or the Engine API's inspect answer.
pub fn from_docker(v: &Value) -> Option<RuntimeInfo> {
    let config = v.get("Config")?;
    let mut info = RuntimeInfo {
        name: v["Name"]
            .as_str()
            .map(|n| Text::from(n.strip_prefix('/').unwrap_or(n))),
        image: config["Image"].as_str().map(Text::from),
        ..RuntimeInfo::default()
    };
    let labels = docker_labels(v);
    let mut set = LabelSet::default();
    for (k, v) in &labels {
        set.push(k, v);
    }
    (info.labels, info.labels_truncated) = set.finish();
    // Kubernetes through dockershim labelled the containers it started.
    info.pod = pod(&labels);
    Some(info)
}

/// `Config.Labels` of a Docker inspect answer, as strings.
fn docker_labels(v: &Value) -> Vec<(String, String)> {
    match &v["Config"]["Labels"] {
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The bundle's `annotations`, as strings.
fn annotations(bundle: &Value) -> Vec<(String, String)> {
    match &bundle["annotations"] {
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    }
}

fn get<'a>(pairs: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    })
}

fn pod(pairs: &[(String, String)]) -> Option<Pod> {
    let field = |keys| get(pairs, keys).map(Text::from);
    let pod = Pod {
        name: field(POD_NAME),
        namespace: field(POD_NAMESPACE),
        uid: field(POD_UID),
        container_name: field(POD_CONTAINER),
    };
    (pod != Pod::default()).then_some(pod)
}

/// Labels as they are found, within the bounds.
#[derive(Default)]
struct LabelSet {
    pairs: Vec<(Text, Text)>,
    bytes: usize,
    truncated: bool,
}

impl LabelSet {
    fn push(&mut self, k: &str, v: &str) {
        if self.pairs.iter().any(|(key, _)| key.0 == k.as_bytes()) {
            return;
        }
        let (k, v) = (k.as_bytes(), v.as_bytes());
        let (kn, vn) = (k.len().min(MAX_LABEL_BYTES), v.len().min(MAX_LABEL_BYTES));
        if self.pairs.len() >= MAX_LABELS || self.bytes + kn + vn > MAX_LABELS_TOTAL {
            self.truncated = true;
            return;
        }
        self.truncated |= kn < k.len() || vn < v.len();
        self.bytes += kn + vn;
        self.pairs
            .push((Text(k[..kn].to_vec()), Text(v[..vn].to_vec())));
    }

    fn finish(self) -> (Labels, bool) {
        (Labels(self.pairs.into()), self.truncated)
    }
}

/// Lookups done since the sensor started, for the heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub found: u64,
    /// No runtime file knew the container (runtime unreachable, rootless
    /// storage elsewhere, container already removed).
    pub failed: u64,
    /// Entries dropped to stay within [`CACHE_SIZE`].
    pub evicted: u64,
}

/// Containers remembered at most.
pub const CACHE_SIZE: usize = 4096;
/// A found container is looked up again after this (labels of a running
/// container do not change, but an id can be reused by a new container).
pub const REFRESH: Duration = Duration::from_secs(300);
/// A failed lookup is not retried before this, so a missing runtime costs
/// one lookup per container per interval.
pub const RETRY: Duration = Duration::from_secs(10);

struct Entry {
    checked: Instant,
    info: Option<Arc<RuntimeInfo>>,
}

/// Bounded cache of lookups by container id.
pub struct RuntimeCache {
    lookup: Lookup,
    entries: HashMap<String, Entry>,
    pub stats: LookupStats,
}

impl RuntimeCache {
    pub fn new(lookup: Lookup) -> Self {
        RuntimeCache {
            lookup,
            entries: HashMap::new(),
            stats: LookupStats::default(),
        }
    }

    pub fn get(&mut self, c: &ContainerRef) -> Option<Arc<RuntimeInfo>> {
        self.get_at(c, Instant::now())
    }

    fn get_at(&mut self, c: &ContainerRef, now: Instant) -> Option<Arc<RuntimeInfo>> {
        if let Some(e) = self.entries.get(&c.id) {
            let wait = match &e.info {
                Some(info) if !info.api_missed => REFRESH,
                _ => RETRY,
            };
            if now.saturating_duration_since(e.checked) < wait {
                return e.info.clone();
            }
        }
        let found = self.lookup.find(c).map(Arc::new);
        if found.is_some() {
            self.stats.found += 1;
        } else {
            self.stats.failed += 1;
        }
        // A container whose files are gone (removed after its last process
        // ended) keeps what was known: its late events still get it.
        let info = found.or_else(|| self.entries.get(&c.id).and_then(|e| e.info.clone()));
        if !self.entries.contains_key(&c.id) && self.entries.len() >= CACHE_SIZE {
            self.evict();
        }
        self.entries.insert(
            c.id.clone(),
            Entry {
                checked: now,
                info: info.clone(),
            },
        );
        info
    }

    /// Drops the entry checked longest ago.
    fn evict(&mut self) {
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.checked)
            .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
            self.stats.evicted += 1;
        }
    }

    pub fn cached(&self) -> usize {
        self.entries.len()
    }
}

mod docker_api;

#[cfg(test)]
mod tests;
