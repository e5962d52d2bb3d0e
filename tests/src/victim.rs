//! A forked child whose memory a test writes into from outside (through
//! process_vm_writev, /proc/PID/mem…) and that checks, from inside,
//! that the write happened.

use std::sync::atomic::{AtomicU8, Ordering};

/// Written in the child from outside; at the same address in the child
/// as in the test (fork copies the address space).
pub static TARGET: [AtomicU8; 16] = [const { AtomicU8::new(0) }; 16];
pub const PAYLOAD: &[u8; 16] = b"injected-payload";

/// A child that waits for one byte on `go`, then exits 0 if [`TARGET`]
/// holds [`PAYLOAD`] (1 if not). It makes syscalls and atomic loads only:
/// the test binary is multi-threaded, and another thread may hold the
/// allocator's lock at the fork.
pub fn fork_checking_target(go: libc::c_int) -> libc::pid_t {
    // SAFETY: the child makes syscalls and atomic loads only, then _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        let mut b = 0u8;
        // SAFETY: reads one byte from the test's pipe: its go.
        unsafe { libc::read(go, (&raw mut b).cast(), 1) };
        let ok = TARGET
            .iter()
            .zip(PAYLOAD)
            .all(|(c, p)| c.load(Ordering::Relaxed) == *p);
        // SAFETY: ends the forked child.
        unsafe { libc::_exit(i32::from(!ok)) };
    }
    child
}

/// Waits for our child `pid`: whether it exited with 0, and its status.
pub fn exited_zero(pid: libc::pid_t) -> (bool, i32) {
    let mut status = 0;
    // SAFETY: waits for the caller's own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        status,
    )
}

/// A plain pipe: [read end, write end].
pub fn pipe() -> [libc::c_int; 2] {
    let mut fds = [0; 2];
    // SAFETY: a plain pipe.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    fds
}
