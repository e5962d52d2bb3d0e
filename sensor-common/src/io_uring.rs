//! io_uring requests: file and network operations a process can make
//! without their syscalls (`openat`, `connect`, `unlinkat`…), through a
//! ring it shares with the kernel. No syscall hook sees them: an intruder
//! can open `/etc/shadow` for writing or connect out this way past every
//! tool that watches syscalls. The sensor reports each request of these
//! operations when it is submitted (`io_uring_submit_req`, or
//! `io_uring_submit_sqe` before 6.4): the operation and the process, and
//! where the kernel passes the request (5.19+) its paths, flags and a
//! connect's address. Where the kernel passes the request to its
//! completion tracepoint too (`io_uring_complete`, 5.19+), each reported
//! request's result follows as a record of its own.

/// `IORING_OP_*` numbers of the reported operations (the kernel's uapi
/// enum, which only grows).
pub mod op {
    pub const ACCEPT: u8 = 13;
    pub const CONNECT: u8 = 16;
    pub const OPENAT: u8 = 18;
    pub const OPENAT2: u8 = 28;
    pub const RENAMEAT: u8 = 35;
    pub const UNLINKAT: u8 = 36;
    pub const MKDIRAT: u8 = 37;
    pub const SYMLINKAT: u8 = 38;
    pub const LINKAT: u8 = 39;
    pub const FSETXATTR: u8 = 41;
    pub const SETXATTR: u8 = 42;
    pub const SOCKET: u8 = 45;
    pub const FTRUNCATE: u8 = 55;
    pub const BIND: u8 = 56;
    pub const LISTEN: u8 = 57;
}

/// The reported operations and their names. Reads, writes, polls and the
/// rest of the ring's traffic are not reported.
pub const OPS: &[(u8, &str)] = &[
    (op::ACCEPT, "accept"),
    (op::CONNECT, "connect"),
    (op::OPENAT, "openat"),
    (op::OPENAT2, "openat2"),
    (op::RENAMEAT, "renameat"),
    (op::UNLINKAT, "unlinkat"),
    (op::MKDIRAT, "mkdirat"),
    (op::SYMLINKAT, "symlinkat"),
    (op::LINKAT, "linkat"),
    (op::FSETXATTR, "fsetxattr"),
    (op::SETXATTR, "setxattr"),
    (op::SOCKET, "socket"),
    (op::FTRUNCATE, "ftruncate"),
    (op::BIND, "bind"),
    (op::LISTEN, "listen"),
];

/// `struct io_uring_cqe` (uapi, fixed since 5.1): `u64 user_data; s32
/// res; u32 flags;`. Where the completion tracepoint passes the entry
/// rather than its fields, they are read at these offsets.
pub const CQE_USER_DATA: u32 = 0;
pub const CQE_RES: u32 = 8;
pub const CQE_FLAGS: u32 = 12;
/// `IORING_CQE_F_MORE`: the request stays armed and completes again (a
/// multishot accept, one completion per connection).
pub const CQE_F_MORE: u64 = 1 << 1;

/// `REQ_F_FIXED_FILE` in a request's flags (`1 << IOSQE_FIXED_FILE_BIT`,
/// the uapi's bit 0, since 5.1): its fd is an index in the ring's
/// registered files.
pub const REQ_F_FIXED_FILE: u32 = 1;

/// `REQ_F_CQE_SKIP` in a request's flags (`IOSQE_CQE_SKIP_SUCCESS`, the
/// uapi's bit 6, since 5.17; read only where the submit tracepoint passes
/// the request, 5.19+): a success posts no completion, so the completion
/// tracepoint never fires for it.
pub const REQ_F_CQE_SKIP: u32 = 1 << 6;

/// Whether operation `opcode` opens a file (its result is the new fd).
pub const fn opens(opcode: u8) -> bool {
    matches!(opcode, op::OPENAT | op::OPENAT2)
}

/// Whether operation `opcode` makes, moves or removes a name (rename,
/// unlink, mkdir, symlink, link). Its path argument does not tell where
/// that lands: the other path of a rename or link can be anywhere, and any
/// path can pass through a symlink; its completion has no file to tell by.
pub const fn changes_names(opcode: u8) -> bool {
    matches!(
        opcode,
        op::RENAMEAT | op::UNLINKAT | op::MKDIRAT | op::SYMLINKAT | op::LINKAT
    )
}

/// Whether operation `opcode` can give a symlink through a magic link a
/// name (symlink, rename, link): counted as the watch family's symlinks
/// are, for the daemon to follow that name before a path through it is
/// decided (see [`crate::symlinks_sync`]).
pub const fn names_links(opcode: u8) -> bool {
    matches!(opcode, op::SYMLINKAT | op::RENAMEAT | op::LINKAT)
}

/// Operations whose second path is resolved from a directory fd of its
/// own (a rename's new name, a hard link's existing file), by opcode bit.
pub const SECOND_PATH_HAS_DIR: u64 = 1 << op::RENAMEAT | 1 << op::LINKAT;

/// Whether operation `opcode`'s second path is resolved from a directory
/// fd of its own.
pub const fn second_path_has_dir(opcode: u8) -> bool {
    opcode < 64 && SECOND_PATH_HAS_DIR & (1 << opcode) != 0
}

/// Whether operation `opcode` sets an xattr (its name and value are in
/// the record).
pub const fn sets_xattr(opcode: u8) -> bool {
    matches!(opcode, op::SETXATTR | op::FSETXATTR)
}

/// Whether operation `opcode` acts on the file open at the request's fd
/// (which the hook then names by its path).
pub const fn acts_on_fd(opcode: u8) -> bool {
    matches!(opcode, op::FSETXATTR | op::FTRUNCATE)
}

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
