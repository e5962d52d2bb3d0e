//! Lookups against runtime files laid out under a scratch root. The podman
//! and runc files are trimmed copies of what podman 4.3 + runc wrote on the
//! build machine for `podman run --name enrich-probe --annotation
//! io.kubernetes.pod.name=web-0 --annotation io.kubernetes.pod.namespace=shop`.

use super::*;

const ID: &str = "3b42f83b1e60b72407006b1c9ceea1dcb542fe0c6dc10a64051d3b87ca39c6e5";
const PODMAN_CONFIG: &str = include_str!("testdata/podman-config.json");
const PODMAN_CONTAINERS: &str = include_str!("testdata/podman-containers.json");
const RUNC_STATE: &str = include_str!("testdata/runc-state.json");

struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let dir =
            std::env::temp_dir().join(format!("sensor-runtime-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Root(dir)
    }
    fn write(&self, path: &str, text: &str) {
        let p = self.0.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn lookup(&self) -> Lookup {
        Lookup::with_root(&self.0)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn podman(id: &str) -> ContainerRef {
    ContainerRef {
        id: id.to_owned(),
        runtime: "podman",
    }
}

fn t(s: &str) -> Option<Text> {
    Some(Text::from(s))
}

fn podman_root(name: &str) -> Root {
    let root = Root::new(name);
    root.write(
        &format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        PODMAN_CONFIG,
    );
    root.write(
        "/var/lib/containers/storage/overlay-containers/containers.json",
        PODMAN_CONTAINERS,
    );
    root
}

#[test]
fn podman_files_give_name_image_and_pod() {
    let root = podman_root("podman");
    let info = root.lookup().find(&podman(ID)).expect("found");
    assert_eq!(info.name, t("enrich-probe"));
    assert_eq!(info.image, t("localhost/sensor-test-busybox:2"));
    let pod = info.pod.expect("pod");
    assert_eq!(pod.name, t("web-0"));
    assert_eq!(pod.namespace, t("shop"));
    assert_eq!(pod.uid, None);
    // The user's annotations are labels; podman's bookkeeping is not.
    let keys: Vec<&[u8]> = info.labels.0.iter().map(|(k, _)| k.0.as_slice()).collect();
    assert!(keys.contains(&&b"io.kubernetes.pod.name"[..]), "{keys:?}");
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(b"io.podman.annotations.")),
        "{keys:?}"
    );
    assert!(!info.labels_truncated);
}

#[test]
fn the_runc_state_leads_to_the_bundle() {
    // No podman storage: only runc's state, which names the bundle.
    let root = Root::new("runc");
    let bundle = root.0.join("bundles/x");
    let state = RUNC_STATE.replace(
        &format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata"),
        "/bundles/x",
    );
    root.write(&format!("/run/runc/{ID}/state.json"), &state);
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), PODMAN_CONFIG).unwrap();
    let info = root.lookup().find(&podman(ID)).expect("found");
    assert_eq!(info.pod.and_then(|p| p.namespace), t("shop"));
    assert_eq!(
        info.name, None,
        "the bundle has no name, and no pod container name was given"
    );
}

#[test]
fn containerd_cri_annotations_name_the_pod() {
    let root = Root::new("containerd");
    let config = r#"{"ociVersion":"1.0.2","annotations":{
        "io.kubernetes.cri.container-type":"container",
        "io.kubernetes.cri.container-name":"nginx",
        "io.kubernetes.cri.image-name":"docker.io/library/nginx:1.25",
        "io.kubernetes.cri.sandbox-name":"web-5d8f",
        "io.kubernetes.cri.sandbox-namespace":"shop",
        "io.kubernetes.cri.sandbox-uid":"1f0e6c1a-8c1b-4c55-9a9e-3d1f4c2b7a10"}}"#;
    root.write(
        &format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        config,
    );
    let info = root
        .lookup()
        .find(&ContainerRef {
            id: ID.into(),
            runtime: "containerd",
        })
        .expect("found");
    assert_eq!(info.name, t("nginx"));
    assert_eq!(info.image, t("docker.io/library/nginx:1.25"));
    let pod = info.pod.unwrap();
    assert_eq!(pod.name, t("web-5d8f"));
    assert_eq!(pod.namespace, t("shop"));
    assert_eq!(pod.uid, t("1f0e6c1a-8c1b-4c55-9a9e-3d1f4c2b7a10"));
    assert!(
        info.labels.is_empty(),
        "CRI bookkeeping only: {:?}",
        info.labels
    );
}

#[test]
fn cri_o_labels_json_becomes_labels() {
    let root = Root::new("crio");
    let config = r#"{"annotations":{
        "io.kubernetes.pod.name":"db-0","io.kubernetes.pod.namespace":"data",
        "io.kubernetes.pod.uid":"u-1","io.kubernetes.container.name":"postgres",
        "io.kubernetes.cri-o.ImageName":"quay.io/x/postgres:16",
        "io.kubernetes.cri-o.Labels":"{\"app\":\"db\",\"io.kubernetes.pod.name\":\"db-0\"}"}}"#;
    root.write(
        &format!("/run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        config,
    );
    let info = root
        .lookup()
        .find(&ContainerRef {
            id: ID.into(),
            runtime: "cri-o",
        })
        .expect("found");
    assert_eq!(info.name, t("postgres"));
    assert_eq!(info.image, t("quay.io/x/postgres:16"));
    assert!(
        info.labels
            .0
            .contains(&(Text::from("app"), Text::from("db"))),
        "{:?}",
        info.labels
    );
    // Keys are unique even when the annotations and the labels repeat one.
    let n = info
        .labels
        .0
        .iter()
        .filter(|(k, _)| k.0 == b"io.kubernetes.pod.name")
        .count();
    assert_eq!(n, 1);
}

/// Trimmed answer of the Engine API's `GET /containers/<id>/json` (the
/// same shape as `config.v2.json` for the fields read).
const DOCKER_INSPECT: &str = r#"{
  "Id": "3b42f83b1e60b72407006b1c9ceea1dcb542fe0c6dc10a64051d3b87ca39c6e5",
  "Created": "2026-11-23T12:30:02.342018643Z",
  "Path": "/bin/sleep",
  "Name": "/shop-web",
  "RestartCount": 0,
  "Driver": "overlay2",
  "Config": {
    "Hostname": "3b42f83b1e60",
    "Image": "registry.example/shop/web:1.4",
    "Labels": {"com.example.team": "shop", "io.kubernetes.pod.name": "web-0",
               "io.kubernetes.pod.namespace": "shop", "odd": "tab\there \u00e9 \\ \"q\""}
  },
  "Image": "sha256:cdab073d245461f1441a274ac4999d2a9401d49f8e6765ea36451dee87d58619"
}"#;

#[test]
fn docker_inspect_maps_name_image_labels_and_pod() {
    let v: Value = serde_json::from_str(DOCKER_INSPECT).unwrap();
    let info = from_docker(&v).unwrap();
    assert_eq!(
        info.name,
        t("shop-web"),
        "the leading / of docker names is not part of the name"
    );
    assert_eq!(info.image, t("registry.example/shop/web:1.4"));
    assert!(
        info.labels
            .0
            .contains(&(Text::from("com.example.team"), Text::from("shop")))
    );
    assert!(
        info.labels
            .0
            .contains(&(Text::from("odd"), Text::from("tab\there \u{e9} \\ \"q\""))),
        "byte-exact"
    );
    assert_eq!(info.pod.unwrap().namespace, t("shop"));
    // And from the file docker keeps.
    let root = Root::new("docker");
    root.write(
        &format!("/var/lib/docker/containers/{ID}/config.v2.json"),
        DOCKER_INSPECT,
    );
    let found = root
        .lookup()
        .find(&ContainerRef {
            id: ID.into(),
            runtime: "docker",
        })
        .unwrap();
    assert_eq!(found.name, t("shop-web"));
}

#[test]
fn hostile_values_are_bounded_and_never_fail_the_lookup() {
    let mut annotations = serde_json::Map::new();
    for i in 0..200 {
        annotations.insert(format!("k{i}"), Value::from("v"));
    }
    annotations.insert("a-big".into(), Value::from("x".repeat(100_000)));
    annotations.insert(
        "io.kubernetes.pod.name".into(),
        Value::from("\u{0}\u{1b}[31m</script>"),
    );
    annotations.insert("not-a-string".into(), Value::from(3));
    let config = serde_json::json!({ "annotations": annotations }).to_string();
    let root = Root::new("hostile");
    root.write(
        &format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &config,
    );
    let info = root.lookup().find(&podman(ID)).unwrap();
    assert_eq!(info.labels.0.len(), MAX_LABELS);
    assert!(info.labels_truncated);
    assert!(
        info.labels
            .0
            .iter()
            .all(|(k, v)| k.0.len() <= MAX_LABEL_BYTES && v.0.len() <= MAX_LABEL_BYTES)
    );
    let total: usize = info
        .labels
        .0
        .iter()
        .map(|(k, v)| k.0.len() + v.0.len())
        .sum();
    assert!(total <= MAX_LABELS_TOTAL, "{total}");
    assert_eq!(info.pod.unwrap().name, t("\u{0}\u{1b}[31m</script>"));
    // Broken files are a failed lookup, not a crash.
    root.write(
        &format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        "{\"annot",
    );
    root.write(
        "/var/lib/containers/storage/overlay-containers/containers.json",
        "[1, {\"id\": 2}, null]",
    );
    assert_eq!(root.lookup().find(&podman(ID)), None);
}

#[test]
fn unknown_containers_are_a_failed_lookup() {
    let root = Root::new("none");
    assert_eq!(root.lookup().find(&podman(ID)), None);
}

#[test]
fn the_cache_refreshes_retries_and_stays_bounded() {
    let root = podman_root("cache");
    let mut cache = RuntimeCache::new(root.lookup());
    let t0 = Instant::now();
    assert!(cache.get_at(&podman(ID), t0).is_some());
    assert!(
        cache
            .get_at(&podman(ID), t0 + Duration::from_secs(1))
            .is_some()
    );
    assert_eq!(
        cache.stats,
        LookupStats {
            found: 1,
            failed: 0,
            evicted: 0
        },
        "the second is from the cache"
    );
    // The files go (podman run --rm): what was known stays.
    std::fs::remove_dir_all(root.0.join("var")).unwrap();
    assert!(
        cache
            .get_at(&podman(ID), t0 + REFRESH + Duration::from_secs(1))
            .is_some()
    );
    assert_eq!(cache.stats.failed, 1);

    // A missing runtime is asked once per RETRY.
    let other = "a".repeat(64);
    assert!(cache.get_at(&podman(&other), t0).is_none());
    assert!(cache.get_at(&podman(&other), t0 + RETRY / 2).is_none());
    assert_eq!(cache.stats.failed, 2);
    assert!(cache.get_at(&podman(&other), t0 + RETRY).is_none());
    assert_eq!(cache.stats.failed, 3);

    for i in 0..CACHE_SIZE + 10 {
        cache.get_at(
            &podman(&format!("{i:064x}")),
            t0 + Duration::from_millis(i as u64),
        );
    }
    assert_eq!(cache.cached(), CACHE_SIZE);
    assert_eq!(cache.stats.evicted, 12);
}

#[test]
fn rootless_podman_is_found_through_crun_status_in_the_users_run_dir() {
    let root = Root::new("rootless");
    let storage = "/home/alice/.local/share/containers/storage/overlay-containers";
    root.write(
        &format!("{storage}/{ID}/userdata/config.json"),
        PODMAN_CONFIG,
    );
    root.write(&format!("{storage}/containers.json"), PODMAN_CONTAINERS);
    // crun's status file (the fields crun writes; the bundle is what counts).
    let status = format!(
        r#"{{"pid":4242,"process-start-time":1,"cgroup-path":"","rootfs":"/x","systemd-cgroup":true,"bundle":"{storage}/{ID}/userdata","created":"2026-11-23T12:30:02Z","detached":true,"external_descriptors":"[]"}}"#
    );
    root.write(&format!("/run/user/1000/crun/{ID}/status"), &status);
    let info = root.lookup().find(&podman(ID)).expect("found");
    assert_eq!(
        info.name,
        t("enrich-probe"),
        "containers.json beside the bundle"
    );
    assert_eq!(info.image, t("localhost/sensor-test-busybox:2"));
    assert_eq!(info.pod.and_then(|p| p.name), t("web-0"));
}

#[test]
fn a_fifo_where_a_state_file_should_be_does_not_block() {
    let root = Root::new("fifo");
    let dir = root.0.join(format!("run/user/1000/runc/{ID}"));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = std::ffi::CString::new(dir.join("state.json").into_os_string().into_encoded_bytes())
        .unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let start = Instant::now();
    assert_eq!(root.lookup().find(&podman(ID)), None);
    // That it returns at all (a blocking open of the fifo never would), not
    // how fast: a loaded CI machine may run this thread late.
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn podman_labels_come_from_its_api_service_when_one_runs() {
    use std::io::Write;
    let root = podman_root("podman-api");
    std::fs::create_dir_all(root.0.join("run/podman")).unwrap();
    let listener =
        std::os::unix::net::UnixListener::bind(root.0.join("run/podman/podman.sock")).unwrap();
    // podman 4.3's compatible inspect, trimmed to the fields read.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // The whole request before the answer: answering and closing after
        // its first part would reset a client still writing the rest, and
        // the lookup would fall back to the files (which a loaded CI
        // machine once showed).
        let mut req = Vec::new();
        let mut chunk = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = std::io::Read::read(&mut s, &mut chunk).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&chunk[..n]);
        }
        let body = r#"{"Name":"/enrich-probe","Config":{"Image":"localhost/sensor-test-busybox:3","Labels":{"team":"shop"}}}"#;
        write!(s, "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nLibpod-Api-Version: 4.3.1\r\n\r\n{body}").unwrap();
    });
    // A deadline a late-scheduled server thread still meets on a loaded CI
    // machine; the sensor's own 250 ms is for a daemon that hangs.
    let info = root
        .lookup()
        .with_api_deadline(Duration::from_secs(30))
        .find(&podman(ID))
        .expect("found");
    server.join().unwrap();
    assert!(
        info.labels
            .0
            .contains(&(Text::from("team"), Text::from("shop"))),
        "{:?}",
        info.labels
    );
    assert!(
        info.labels
            .0
            .iter()
            .any(|(k, _)| k.0 == b"io.kubernetes.pod.name"),
        "annotations too"
    );
    assert_eq!(info.name, t("enrich-probe"), "the files still name it");
}

#[test]
fn a_podman_api_that_does_not_answer_in_time_is_asked_again_sooner() {
    let root = podman_root("podman-api-silent");
    std::fs::create_dir_all(root.0.join("run/podman")).unwrap();
    // Bound and never accepted: the connect succeeds, no answer comes.
    let _listener =
        std::os::unix::net::UnixListener::bind(root.0.join("run/podman/podman.sock")).unwrap();
    let lookup = root.lookup().with_api_deadline(Duration::from_millis(50));
    let info = lookup.find(&podman(ID)).expect("the files still know it");
    assert!(info.api_missed, "{info:?}");
    assert_eq!(info.name, t("enrich-probe"));

    let mut cache = RuntimeCache::new(lookup);
    let t0 = Instant::now();
    assert!(cache.get_at(&podman(ID), t0).is_some());
    assert!(cache.get_at(&podman(ID), t0 + RETRY / 2).is_some());
    assert_eq!(cache.stats.found, 1, "from the cache within RETRY");
    assert!(cache.get_at(&podman(ID), t0 + RETRY).is_some());
    assert_eq!(cache.stats.found, 2, "asked again after RETRY, not REFRESH");
}

#[test]
fn without_an_api_service_the_files_are_complete() {
    let root = podman_root("podman-no-api");
    let info = root.lookup().find(&podman(ID)).expect("found");
    assert!(!info.api_missed, "no socket: nothing was missed");
}
