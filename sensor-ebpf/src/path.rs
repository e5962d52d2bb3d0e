//! Paths, resolved in the kernel by walking dentries and mounts (the way
//! the kernel's own d_path does), written leaf first as NUL-terminated
//! components. bpf_d_path would be simpler but is only allowed in a few
//! fentry/LSM hooks, not in tracepoints.
//!
//! Written for the verifier: no early return inside the loops (a failed
//! read ends the walk and is reported in the result), and the write
//! position is kept masked so that loop states compare equal and prune.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use sensor_common::{COMPONENT_MAX, OFFSET_MISSING, PATH_CAP, PATH_COMPONENTS_MAX};

use crate::kernel::{Miss, plus, read_ptr};
use crate::maps::{DATA_MASK, off};

/// Appends to the data area of the scratch buffer. Every write position is
/// masked with DATA_MASK so the verifier can bound it; the caps keep real
/// positions far below the mask, so masking never changes a position.
pub struct Writer {
    pub data: *mut u8,
    pub pos: usize,
}

/// How a walk ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Reached the root: the path is complete.
    Complete,
    /// Hit the byte cap or the component limit.
    Truncated,
    /// A kernel read failed; what was written so far is kept.
    Failed,
}

impl Writer {
    /// Appends the NUL-terminated kernel string at `src` (at most
    /// COMPONENT_MAX bytes with its NUL). False if it could not be read.
    #[inline(always)]
    fn push_str(&mut self, src: u64) -> bool {
        let at = self.pos & DATA_MASK;
        // SAFETY: data + DATA_MASK + COMPONENT_MAX is inside the scratch value.
        let dst = unsafe { self.data.add(at) };
        // SAFETY: probe read into a buffer of COMPONENT_MAX bytes.
        let n =
            unsafe { bpf_probe_read_kernel_str(dst.cast(), COMPONENT_MAX as u32, src as *const _) };
        if n <= 0 {
            return false;
        }
        self.pos = (self.pos + n as usize) & DATA_MASK;
        true
    }

    /// The root has no components; it is written as one `/` component so
    /// that an empty path keeps meaning "could not be resolved".
    #[inline(always)]
    fn push_root(&mut self) {
        let at = self.pos & DATA_MASK;
        // SAFETY: as in push_str.
        unsafe {
            *self.data.add(at) = b'/';
            *self.data.add(at + 1) = 0;
        }
        self.pos = (self.pos + 2) & DATA_MASK;
    }

    /// Bytes written since `start`.
    #[inline(always)]
    pub fn since(&self, start: usize) -> usize {
        self.pos.wrapping_sub(start) & DATA_MASK
    }
}

/// Writes the `struct path` found at `path` (up to PATH_CAP bytes and
/// PATH_COMPONENTS_MAX components); one not found is a failed walk.
#[inline(always)]
pub fn write_found_path(w: &mut Writer, path: Result<u64, Miss>) -> Walk {
    match path {
        Ok(path) => write_path(w, path, PATH_CAP, PATH_COMPONENTS_MAX),
        Err(_) => Walk::Failed,
    }
}

/// Writes the `struct path` at kernel address `path`.
#[inline(always)]
pub fn write_path(w: &mut Writer, path: u64, cap: usize, max_components: u32) -> Walk {
    let (vfsmount, dentry) = path_parts(path);
    write_mounted(w, vfsmount, dentry, cap, max_components)
}

/// The `struct path` at kernel address `path` as its mount and dentry
/// (0 where unreadable, which [`write_mounted`] reports as a failed walk).
#[inline(always)]
pub fn path_parts(path: u64) -> (u64, u64) {
    (
        read_ptr(path, off!(path_mnt)).unwrap_or(0),
        read_ptr(path, off!(path_dentry)).unwrap_or(0),
    )
}

/// Writes the path of `dentry` in the mount whose `struct vfsmount` is at
/// `vfsmount`: a `struct path` given as its two parts.
#[inline(always)]
pub fn write_mounted(
    w: &mut Writer,
    vfsmount: u64,
    dentry: u64,
    cap: usize,
    max_components: u32,
) -> Walk {
    let start = w.pos;
    let mount_mnt = off!(mount_mnt);
    let name_ptr = plus(off!(dentry_name), off!(qstr_name));
    let mut dentry = dentry;
    if dentry == 0 || vfsmount == 0 || mount_mnt == OFFSET_MISSING {
        return Walk::Failed;
    }
    // struct mount embeds struct vfsmount: the kernel's real_mount().
    let mut mount = vfsmount - mount_mnt as u64;
    let mut result = Walk::Truncated;
    for _ in 0..max_components {
        let vfsmount = mount + mount_mnt as u64;
        let mnt_root = read_ptr(vfsmount, off!(vfsmount_root)).unwrap_or(0);
        let parent = read_ptr(dentry, off!(dentry_parent)).unwrap_or(0);
        if mnt_root == 0 || parent == 0 {
            result = Walk::Failed;
            break;
        }
        if dentry == mnt_root {
            let mount_parent = read_ptr(mount, off!(mount_parent)).unwrap_or(0);
            if mount_parent == mount || mount_parent == 0 {
                // The root of the namespace (or of a detached mount tree).
                result = Walk::Complete;
                break;
            }
            // Cross into the mount this one is mounted on.
            dentry = read_ptr(mount, off!(mount_mountpoint)).unwrap_or(0);
            mount = mount_parent;
            continue;
        }
        let name = read_ptr(dentry, name_ptr).unwrap_or(0);
        if name == 0 || !w.push_str(name) {
            result = Walk::Failed;
            break;
        }
        if dentry == parent {
            // No parent outside a mount root: a pseudo file (memfd, pipe,
            // anon inode). Its own name is all there is.
            result = Walk::Complete;
            break;
        }
        if w.since(start) >= cap {
            break;
        }
        dentry = parent;
    }
    if result == Walk::Complete && w.pos == start {
        w.push_root();
    }
    result
}

/// Writes the cgroup path from kernfs node `kn` up to the hierarchy root.
#[inline(always)]
pub fn write_cgroup(w: &mut Writer, kn: u64, cap: usize, max_components: u32) -> Walk {
    let start = w.pos;
    let mut kn = kn;
    let mut result = Walk::Truncated;
    for _ in 0..max_components {
        let parent = read_ptr(kn, off!(kernfs_parent)).unwrap_or(0);
        if parent == 0 {
            result = Walk::Complete;
            break;
        }
        let name = read_ptr(kn, off!(kernfs_name)).unwrap_or(0);
        if name == 0 || !w.push_str(name) {
            result = Walk::Failed;
            break;
        }
        if w.since(start) >= cap {
            break;
        }
        kn = parent;
    }
    if result == Walk::Complete && w.pos == start {
        w.push_root();
    }
    result
}
