//! io_uring requests: file and network operations a process can make
//! without their syscalls (`openat`, `connect`, `unlinkat`…), through a
//! ring it shares with the kernel. No syscall hook sees them: an intruder
//! can open `/etc/shadow` for writing or connect out this way past every
//! tool that watches syscalls. The sensor reports each request of these
//! operations when it is submitted (`io_uring_submit_req`, or
//! `io_uring_submit_sqe` before 6.4): the operation and the process, not
//! yet its arguments or result.

/// The reported operations: `IORING_OP_*` numbers (the kernel's uapi
/// enum, which only grows) and their names. Reads, writes, polls and the
/// rest of the ring's traffic are not reported.
pub const OPS: &[(u8, &str)] = &[
    (13, "accept"),
    (16, "connect"),
    (18, "openat"),
    (28, "openat2"),
    (35, "renameat"),
    (36, "unlinkat"),
    (37, "mkdirat"),
    (38, "symlinkat"),
    (39, "linkat"),
    (41, "fsetxattr"),
    (42, "setxattr"),
    (45, "socket"),
    (55, "ftruncate"),
    (56, "bind"),
    (57, "listen"),
];

/// [`OPS`] as a bit mask by opcode (every one is below 64).
pub const REPORTED: u64 = {
    let mut mask = 0u64;
    let mut i = 0;
    while i < OPS.len() {
        assert!(OPS[i].0 < 64);
        mask |= 1 << OPS[i].0;
        i += 1;
    }
    mask
};

/// The name of reported opcode `opcode`.
pub fn name(opcode: u8) -> Option<&'static str> {
    OPS.iter().find(|(o, _)| *o == opcode).map(|(_, n)| *n)
}
