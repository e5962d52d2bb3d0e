//! Program runs the kernel skipped, read from each attached program's
//! `recursion_misses` (`struct bpf_prog_info`, Linux 5.12+).
//!
//! The kernel does not start a program on a CPU where that same program
//! is already running: it skips the run and counts it. A run skipped is
//! an event lost, so the sensor reports the count like the ring buffer's
//! drops. Where it can happen: `inet_sock_set_state` (a softirq's state
//! change interrupting one made by a task, as a connecting socket's close
//! is), `signal_generate` (signals sent from interrupts), and on kernels
//! that let the syscall tracepoints' programs be preempted, a task's
//! syscall on a CPU where another's program was preempted halfway.
//!
//! Read with the `bpf` syscall by hand: aya's `ProgramInfo` (0.14) does
//! not carry `recursion_misses`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use aya::Ebpf;
use aya_obj::generated::bpf_prog_info;

/// An attached program whose skipped runs are counted.
struct Watched {
    name: &'static str,
    fd: OwnedFd,
    last: u64,
}

/// The program info read names another program: the struct the sensor
/// reads is not laid out as the kernel's, and no count read through it
/// could be trusted. A bug, so it stops the sensor (and every test).
#[derive(Debug, thiserror::Error)]
#[error("BPF program info for {name} names {found:?}: the info layout is not the kernel's")]
pub struct SkippedError {
    name: &'static str,
    found: String,
}

pub struct Skipped {
    programs: Vec<Watched>,
}

impl Skipped {
    /// Every program still in `ebpf`. Only attached ones can have runs
    /// skipped: a program reached by tail call runs inside its caller's
    /// run, whose skip counts on the caller (its own count stays 0).
    pub fn new(ebpf: &Ebpf) -> Skipped {
        let programs = ebpf
            .programs()
            .filter_map(|(name, program)| {
                let fd = program.fd().ok()?.as_fd().try_clone_to_owned().ok()?;
                // Leaked once per program at start (a few dozen short
                // names): the loss report takes `&'static str` kinds.
                let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
                Some(Watched { name, fd, last: 0 })
            })
            .collect::<Vec<_>>();
        tracing::debug!(
            programs = programs.len(),
            "counting the runs the kernel skips"
        );
        Skipped { programs }
    }

    /// Runs skipped since the last call, per program, where non-zero. A
    /// program whose info cannot be read is said in the log once and not
    /// counted from then on.
    pub fn deltas(&mut self) -> Result<Vec<(&'static str, u64)>, SkippedError> {
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for (i, p) in self.programs.iter_mut().enumerate() {
            let info = match prog_info(p.fd.as_fd()) {
                Ok(info) => info,
                Err(e) => {
                    tracing::warn!(
                        program = p.name,
                        "cannot read the program's skipped runs; not counted from now on: {e}"
                    );
                    unreadable.push(i);
                    continue;
                }
            };
            check_name(p.name, &info)?;
            let misses = info.recursion_misses;
            let delta = misses.wrapping_sub(p.last);
            p.last = misses;
            if delta > 0 {
                out.push((p.name, delta));
            }
        }
        for i in unreadable.into_iter().rev() {
            self.programs.remove(i);
        }
        Ok(out)
    }
}

/// The kernel keeps the first 15 bytes of a program's name: a mismatch
/// means the info was not read where it is (a layout error), which would
/// make every count wrong, so it is an error rather than a quiet zero.
fn check_name(name: &'static str, info: &bpf_prog_info) -> Result<(), SkippedError> {
    let found: Vec<u8> = info
        .name
        .iter()
        .map(|c| *c as u8)
        .take_while(|c| *c != 0)
        .collect();
    let want = &name.as_bytes()[..name.len().min(info.name.len() - 1)];
    if found == want {
        Ok(())
    } else {
        Err(SkippedError {
            name,
            found: String::from_utf8_lossy(&found).into_owned(),
        })
    }
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` for a program.
fn prog_info(fd: BorrowedFd<'_>) -> std::io::Result<bpf_prog_info> {
    /// The `info` member of `union bpf_attr`.
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: bpf_prog_info is plain integers and arrays: all-zero is valid.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: (&raw mut info) as u64,
    };
    // SAFETY: attr points at a live InfoByFd, info_len bytes at `info` are
    // writable, and the kernel writes at most that many (fewer on a kernel
    // whose struct is shorter: the rest stays zero, as recursion_misses
    // does before 5.12).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            (&raw mut attr).cast::<libc::c_void>(),
            std::mem::size_of::<InfoByFd>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_named(name: &[u8]) -> bpf_prog_info {
        // SAFETY: plain integers and arrays: all-zero is valid.
        let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
        for (d, s) in info.name.iter_mut().zip(name) {
            *d = *s as _;
        }
        info
    }

    #[test]
    fn the_kernel_s_truncated_name_is_the_program_s() {
        // BPF_OBJ_NAME_LEN is 16 with the NUL: 15 bytes are kept.
        let long = "process_exec_cgroup";
        assert!(check_name(long, &info_named(b"process_exec_cg")).is_ok());
        assert!(check_name("net_state", &info_named(b"net_state")).is_ok());
        let err = check_name("net_state", &info_named(b"et_state")).expect_err("another name");
        assert!(err.to_string().contains("\"et_state\""), "{err}");
        assert!(check_name("net_state", &info_named(b"")).is_err());
    }

    /// The info of a real program, read through the struct: the name
    /// check passes and nothing was skipped yet. Needs root.
    #[test]
    fn a_loaded_program_s_info_reads_back_its_name() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to load a program");
            return;
        }
        // The smallest program: `r0 = 0; exit`, as a socket filter.
        let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
        let license = c"GPL";
        #[repr(C)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
        }
        let mut name = [0u8; 16];
        name[..11].copy_from_slice(b"skip_test_p");
        let mut attr = ProgLoad {
            prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
            insn_cnt: 2,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 0,
            log_size: 0,
            log_buf: 0,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
        };
        // SAFETY: a BPF_PROG_LOAD attr prefix the kernel reads up to its size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                5, // BPF_PROG_LOAD
                (&raw mut attr).cast::<libc::c_void>(),
                std::mem::size_of::<ProgLoad>() as libc::c_uint,
            )
        };
        assert!(fd >= 0, "load: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd this test owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let info = prog_info(fd.as_fd()).expect("info");
        assert!(check_name("skip_test_p", &info).is_ok());
        assert_eq!(info.recursion_misses, 0);
        assert_eq!(info.type_, 1, "the program type, read at its offset");
    }
}
