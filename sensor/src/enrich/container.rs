//! Which container a process is in, from its cgroup path.
//!
//! Every runtime puts a container's processes in a cgroup named after the
//! container id, so the id is known for every process — including ones
//! started before the sensor and ones entered with `exec` — without asking
//! the runtime. Names, images and labels (from the runtimes' APIs) build on
//! this id.

/// A container found in a cgroup path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// The runtime's full 64-hex-digit id.
    pub id: String,
    pub runtime: &'static str,
}

/// Prefixes of cgroup path components that name a container, and the
/// runtime each belongs to. With systemd the component ends in `.scope`.
const PREFIXES: &[(&str, &str)] = &[
    ("docker-", "docker"),             // systemd driver: docker-<id>.scope
    ("libpod-", "podman"),             // libpod-<id>.scope, or /libpod_parent/libpod-<id>
    ("crio-", "cri-o"),                // crio-<id>.scope, or /crio-<id>
    ("cri-containerd-", "containerd"), // containerd's CRI plugin with systemd
];

/// Parents under which a bare 64-hex component is a container id.
const PARENTS: &[(&str, &str)] = &[
    ("docker", "docker"), // cgroupfs driver: /docker/<id>
    ("kubepods", "containerd"),
];

/// The container of the process whose cgroup path is `path`, if any.
///
/// Looked for from the leaf upwards, because runtimes nest (podman on
/// cgroup v2 puts the process in `libpod-<id>.scope/container`).
pub fn from_cgroup_path(path: &[u8]) -> Option<ContainerRef> {
    let path = std::str::from_utf8(path).ok()?;
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, component) in components.iter().enumerate().rev() {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        for (prefix, runtime) in PREFIXES {
            if let Some(id) = name.strip_prefix(prefix).filter(|id| is_container_id(id)) {
                return Some(ContainerRef {
                    id: id.to_owned(),
                    runtime,
                });
            }
        }
        if is_container_id(name) {
            // cgroupfs drivers: the id alone, under the runtime's directory
            // (kubelet with cgroupfs: /kubepods/<qos>/pod<uid>/<id>).
            let runtime = components[..i]
                .iter()
                .find_map(|c| PARENTS.iter().find(|(p, _)| c == p).map(|(_, r)| *r))
                .unwrap_or("unknown");
            return Some(ContainerRef {
                id: name.to_owned(),
                runtime,
            });
        }
    }
    None
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2b0c6c1a3e5d7f9b8a0c2e4d6f8a1b3c5e7d9f0a2b4c6d8e0f1a3b5c7d9e1f";

    fn found(path: &str) -> Option<(String, &'static str)> {
        from_cgroup_path(path.as_bytes()).map(|c| (c.id, c.runtime))
    }

    #[test]
    fn every_runtime_layout_names_its_container() {
        let cases = [
            (format!("/docker/{ID}"), "docker"),
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (format!("/libpod_parent/libpod-{ID}"), "podman"),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
            ),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
                ),
                "podman",
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d6c.slice/crio-{ID}.scope"
                ),
                "cri-o",
            ),
            (format!("/kubepods/burstable/pod0d6c-11/{ID}"), "containerd"),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope"
                ),
                "containerd",
            ),
        ];
        for (path, runtime) in cases {
            assert_eq!(found(&path), Some((ID.to_owned(), runtime)), "{path}");
        }
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for path in [
            "/",
            "",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/sshd.service",
            "/process_api/2a5889f56f598f5af3c59951720b5ba4",
            // Not 64 hex digits.
            "/docker/abc",
            "/system.slice/docker-ABCDEF.scope",
        ] {
            assert_eq!(found(path), None, "{path}");
        }
        assert_eq!(from_cgroup_path(b"/docker/\xff\xfe"), None);
    }
}
