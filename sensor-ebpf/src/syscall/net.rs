//! Network: connect, accept, accept4, bind, listen, the sockets that
//! see or forge whole packets (packet, raw, ICMP: [`captures_packets`];
//! the entry of any other socket call stores nothing), and the end of a
//! non-blocking connect.
//!
//! At entry: the caller's socket address (connect, bind), read from the
//! caller's memory. Where fentry loads, `net_address.rs` adds the kernel's
//! own copy of it, which a thread of the caller cannot change after the
//! entry's read. At exit: the result and the socket's own view of both
//! ends (the local port the kernel picked, accept's client). A connect
//! that returns EINPROGRESS is remembered by socket; its TCP state change
//! out of SYN_SENT (`inet_sock_set_state`) reports how it ended.
//!
//! A TCP socket that starts connecting (CLOSE to SYN_SENT) in a task with
//! no connect call in flight is reported from that state change: a send
//! with `MSG_FASTOPEN` (sendto, sendmsg, sendmmsg, io_uring's send)
//! connects the socket as it sends, with no connect call at all, and a
//! tracer of connect alone never sees that connection.

use aya_ebpf::helpers::bpf_probe_read_kernel;
use aya_ebpf::helpers::generated::bpf_probe_read_user;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{HashMap, LruHashMap, PerCpuArray};
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{
    EventKind, NET_OP_CONNECT_OUTCOME, NET_OP_CONNECT_UNSEEN, NetEvent, OFFSET_MISSING, ProbeError,
    SOCKADDR_CAP, SocketEnds, SyscallOp, captures_packets, net_flags,
};

use super::inflight;
use crate::kernel::{
    Miss, copy_len, copy_struct, put, read_bytes, read_ptr, read_u16, read_u32, zero_u64s,
};
use crate::maps::{count_error, off};
use crate::task::{self, Current};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const TCP_ESTABLISHED: u32 = 1;
const TCP_SYN_SENT: u32 = 2;
const TCP_CLOSE: u32 = 7;
const EBADF: i64 = 9;
const ENOTSOCK: i64 = 88;
const ECONNABORTED: i64 = 103;
const EINPROGRESS: i64 = 115;

/// What was known at entry, and the kernel's copy of the address
/// (`net_address.rs`). 8-aligned for zero_u64s on the addresses.
#[repr(C, align(8))]
pub struct PendingNet {
    pub(super) op: u32,
    fd: i32,
    arg: u32,
    sockaddr_len: u32,
    /// `net_flags`.
    pub(super) flags: u32,
    pub(super) kernel_sockaddr_len: u32,
    /// socket's family and protocol arguments (its type is `arg`).
    socket_family: u16,
    socket_protocol: u16,
    _pad: u32,
    sockaddr: [u8; SOCKADDR_CAP],
    pub(super) kernel_sockaddr: [u8; SOCKADDR_CAP],
}

// SAFETY: repr(C), starting with its op.
unsafe impl inflight::Record for PendingNet {}

/// Kept between the thread's calls (see [`inflight`]).
#[map]
pub(super) static NET_INFLIGHT: HashMap<u64, PendingNet> = HashMap::with_max_entries(8192, 0);

/// The thread `key` is exiting: its record goes.
#[inline(always)]
pub(super) fn thread_exited(key: &u64) {
    let _ = NET_INFLIGHT.remove(key);
}

/// Where records are assembled (too large for the stack).
#[map]
static NET_SCRATCH: PerCpuArray<NetEvent> = PerCpuArray::with_max_entries(1, 0);

/// Sockets whose connect returned EINPROGRESS, by `struct sock` address,
/// holding the connect's record. LRU: a socket that never leaves SYN_SENT
/// (impossible short of a kernel bug) cannot fill it.
#[map]
static CONNECTING: LruHashMap<u64, NetEvent> = LruHashMap::with_max_entries(4096, 0);

super::syscall_programs!(net_enter, net_exit, net_compat_enter, net_compat_exit);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
    // Most sockets are none of the reported ones: left before any work.
    if op == SyscallOp::Socket
        && !captures_packets(c.arg(0) as u32, c.arg(1) as u32, c.arg(2) as u32)
    {
        return 0;
    }
    let mut p = core::mem::MaybeUninit::<PendingNet>::uninit();
    // SAFETY: every field is written below before the value is read.
    let p = unsafe { &mut *p.as_mut_ptr() };
    // SAFETY: sockaddr is 8-aligned (asserted below) and SOCKADDR_CAP long.
    unsafe { zero_u64s::<{ SOCKADDR_CAP / 8 }>(p.sockaddr.as_mut_ptr()) };
    put(&mut p.op, op as u32);
    put(&mut p.fd, c.arg(0) as i32);
    put(&mut p.arg, 0);
    put(&mut p.sockaddr_len, 0);
    put(&mut p.flags, 0);
    put(&mut p.kernel_sockaddr_len, 0);
    put(&mut p.socket_family, 0);
    put(&mut p.socket_protocol, 0);
    put(&mut p._pad, 0);
    match op {
        SyscallOp::Connect | SyscallOp::Bind => {
            let addr = c.arg(1);
            let len = copy_len::<SOCKADDR_CAP>(c.arg(2));
            if len > 0 {
                // SAFETY: at most SOCKADDR_CAP bytes into sockaddr.
                let r = unsafe {
                    bpf_probe_read_user(p.sockaddr.as_mut_ptr().cast(), len, addr as *const _)
                };
                if r < 0 {
                    count_error(ProbeError::ReadArg);
                } else {
                    put(&mut p.sockaddr_len, len);
                }
            }
        }
        SyscallOp::Listen => put(&mut p.arg, c.arg(1) as u32),
        SyscallOp::Accept4 => put(&mut p.arg, c.arg(3) as u32),
        SyscallOp::Socket => {
            put(&mut p.fd, -1);
            put(&mut p.arg, c.arg(1) as u32);
            // One the checks above let through: below 65536.
            put(&mut p.socket_family, c.arg(0) as u16);
            // A packet socket's is an EtherType in network order, which the
            // kernel cuts to 16 bits too; an IP one's above 262 is refused
            // (EINVAL).
            put(&mut p.socket_protocol, c.arg(2) as u16);
        }
        _ => {}
    }
    if !inflight::store(&NET_INFLIGHT, &super::entry_thread_key(), p) {
        count_error(ProbeError::Inflight);
    }
    0
}

// zero_u64s on PendingNet::sockaddr needs it 8-aligned.
const _: () = assert!(core::mem::offset_of!(PendingNet, sockaddr) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(PendingNet, kernel_sockaddr) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(NetEvent, local_addr) % 8 == 0);

/// `abi`: the `TaskInfo::flags` of the ABI the call came through.
#[inline(always)]
fn exit(_ctx: *mut core::ffi::c_void, ret: i64, abi: u32) -> u32 {
    let current = Current::get();
    let key = current.thread_key();
    let Some(record) = inflight::find(&NET_INFLIGHT, &key) else {
        return 0;
    };
    // SAFETY: a live map value, this thread's only.
    let p = unsafe { &*record };
    let Some(ev) = NET_SCRATCH.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        inflight::consume(record);
        return 0;
    };
    // SAFETY: this CPU's slot; the program does not sleep.
    let ev = unsafe { &mut *ev };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        inflight::consume(record);
        return 0;
    }
    task::mark_abi(&mut ev.task, abi);
    ev.header.kind = EventKind::Net as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.op = p.op;
    ev.fd = p.fd;
    ev.ret = ret;
    ev.arg = p.arg;
    ev.sockaddr_len = p.sockaddr_len;
    ev.flags = p.flags as u16;
    ev.kernel_sockaddr_len = p.kernel_sockaddr_len;
    // SAFETY: two arrays of the same type in map values, twice. The
    // daemon reads no more of either than its length says: where a call
    // copied none (accept, listen; the kernel's copy where fentry is
    // refused) the event's bytes are left as they are, which saves those
    // calls a probe read each.
    unsafe {
        if p.sockaddr_len != 0 {
            copy_struct(&mut ev.sockaddr, &p.sockaddr);
        }
        if p.flags & net_flags::KERNEL_ADDRESS as u32 != 0 {
            copy_struct(&mut ev.kernel_sockaddr, &p.kernel_sockaddr);
        }
    }
    // accept's socket is the new one (its peer is the client); the others'
    // is the fd they were given, unless it was not a socket at all. A new
    // socket has no ends yet: what it is was asked for in its arguments,
    // which are what a refused one (EPERM) has to show.
    let is_accept = p.op == SyscallOp::Accept as u32 || p.op == SyscallOp::Accept4 as u32;
    let is_socket = p.op == SyscallOp::Socket as u32;
    let sock_fd = if is_accept {
        if ret >= 0 { ret as i32 } else { -1 }
    } else {
        p.fd
    };
    let not_a_socket = ret == -EBADF || ret == -ENOTSOCK;
    let sk = if not_a_socket || is_socket {
        0
    } else {
        sock_of_file(current.fd_file(sock_fd))
    };
    // The scratch slot holds the previous record: without a socket (a
    // failed accept, a bad fd) its ends must read as unknown, not as the
    // last event's.
    clear_endpoints(ev);
    if is_socket {
        let sock_type = (p.arg & sensor_common::SOCK_TYPE_MASK) as u16;
        ev.set_kind(p.socket_family, p.socket_protocol, sock_type);
    }
    if sk != 0 && read_endpoints(ev, sk).is_err() {
        count_error(ProbeError::ReadTask);
    }
    send_scratch(ev);

    if ret == -EINPROGRESS && sk != 0 && ev.protocol == IPPROTO_TCP {
        // Remember the connect until its state leaves SYN_SENT; if that
        // already happened (loopback is fast), report it from here. The
        // map delete decides who reports: exactly one side succeeds.
        if CONNECTING.insert(&sk, &*ev, 0).is_err() {
            count_error(ProbeError::Inflight);
        } else if read_state(sk) != TCP_SYN_SENT
            && CONNECTING.remove(&sk).is_ok()
            && outcome(ev, sk, read_state(sk))
        {
            send_scratch(ev);
        }
    }
    inflight::consume(record);
    0
}

/// Sends the record in this CPU's [`NET_SCRATCH`] slot, cut after the
/// addresses it holds ([`NetEvent::record_size`]).
#[inline(always)]
fn send_scratch(ev: &mut NetEvent) {
    let kernel_copy = ev.flags & net_flags::KERNEL_ADDRESS != 0;
    let size = NetEvent::record_size(ev.sockaddr_len, kernel_copy);
    ev.header.size = size as u32;
    // SAFETY: the NetEvent in this CPU's slot, a map value, and size is
    // at most its size.
    unsafe { crate::ring::output(EventKind::Net, (ev as *const NetEvent).cast(), size) };
}

/// `inet_sock_set_state(const struct sock *sk, int oldstate, int newstate)`:
/// fires in whatever context changes the state (often a softirq), so the
/// task comes from the connect's remembered record, never from `current`.
///
/// The record is written straight into the ring buffer, never through
/// [`NET_SCRATCH`]: a softirq can run this on a CPU where `net_exit` was
/// interrupted halfway through filling that slot, and would send the
/// connect's record under the other's name, or spoil it.
#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn net_state(ctx: RawTracePointContext) -> u32 {
    let sk: u64 = ctx.arg(0);
    let old: u64 = ctx.arg(1);
    let new: u64 = ctx.arg(2);
    // In this program, not one of its own on the same tracepoint: that
    // cost every state change of every socket a second program run (150 to
    // 240 ns more BPF time per loopback connect and accept, `cargo xtask
    // bench --only bursts`). The price: the kernel skips this program's
    // run on a CPU where it is running, and a softirq's state change (a
    // connect ending) can interrupt this task's check, which is one map
    // lookup long where a connect call is in flight; a skip is counted.
    if old as u32 == TCP_CLOSE && new as u32 == TCP_SYN_SENT {
        connect_unseen(sk);
        return 0;
    }
    if old as u32 != TCP_SYN_SENT {
        return 0;
    }
    // SAFETY: the value is copied out before the entry is removed.
    let Some(remembered) = (unsafe { CONNECTING.get(&sk) }) else {
        return 0;
    };
    let Some(mut entry) = crate::ring::reserve::<NetEvent>(EventKind::Net) else {
        // A full ring buffer: counted as a loss. The record goes too.
        let _ = CONNECTING.remove(&sk);
        return 0;
    };
    // SAFETY: reserved space for one NetEvent, written whole by the copy
    // (of a map value of the same type) before anything reads it.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    // SAFETY: as above.
    let copied = unsafe { copy_struct(ev, remembered) };
    // The delete decides who reports: exactly one side succeeds.
    if copied && CONNECTING.remove(&sk).is_ok() && outcome(ev, sk, new as u32) {
        entry.submit(0);
    } else {
        entry.discard(0);
    }
    0
}

/// io_uring connects submitted and not completed, by the `struct sock`
/// of the socket they name (looked up in the submitter's fd table at
/// submission), to where they asked to go ([`ring_destination`]): the
/// ring's hooks report those, so [`connect_unseen`] leaves the socket's
/// start out where it goes there. Removed at the request's completion;
/// LRU, for requests whose completion is not seen.
#[map]
static RING_CONNECTS: LruHashMap<u64, [u64; 3]> = LruHashMap::with_max_entries(1024, 0);

/// An io_uring connect of socket `sk` to `sockaddr` (the address its
/// record read, `len` bytes) was submitted and reported.
#[inline(always)]
pub(crate) fn ring_connect_submitted(sk: u64, sockaddr: &[u8; SOCKADDR_CAP], len: usize) {
    let Some(to) = ring_destination(sockaddr, len) else {
        return;
    };
    if RING_CONNECTS.insert(&sk, &to, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
}

/// The io_uring connect of socket `sk` completed.
#[inline(always)]
pub(crate) fn ring_connect_completed(sk: u64) {
    let _ = RING_CONNECTS.remove(&sk);
}

/// An IP socket address (`len` bytes) as [`RING_CONNECTS`] keeps it, laid
/// out as a record's peer is: `[family << 16 | port, address]`, the
/// address in the 16 bytes of [`NetEvent::remote_addr`] (an IPv4 one in
/// the first 4, the rest zero). None for another family.
#[inline(always)]
fn ring_destination(sockaddr: &[u8; SOCKADDR_CAP], len: usize) -> Option<[u64; 3]> {
    let family = u16::from_ne_bytes([sockaddr[0], sockaddr[1]]);
    let port = u16::from_be_bytes([sockaddr[2], sockaddr[3]]);
    let mut addr = [0u8; 16];
    match family {
        AF_INET if len >= 8 => addr[..4].copy_from_slice(&sockaddr[4..8]),
        AF_INET6 if len >= 24 => addr.copy_from_slice(&sockaddr[8..24]),
        _ => return None,
    }
    Some(destination_key(family, port, &addr))
}

/// A peer as a map key: `[family << 16 | port, address halves]` (the
/// address as a record's `remote_addr` holds it, read as two u64s).
#[inline(always)]
fn destination_key(family: u16, port: u16, addr: &[u8; 16]) -> [u64; 3] {
    let mut halves = [0u64; 2];
    // SAFETY: 16 bytes read as two unaligned u64s.
    unsafe {
        halves[0] = core::ptr::read_unaligned(addr.as_ptr().cast::<u64>());
        halves[1] = core::ptr::read_unaligned(addr.as_ptr().add(8).cast::<u64>());
    }
    peer_key(family, port, halves)
}

/// [`destination_key`] of an address already in halves (also
/// [`super::udp_flows`]'s, whose context gives the address as words).
#[inline(always)]
pub(super) fn peer_key(family: u16, port: u16, halves: [u64; 2]) -> [u64; 3] {
    [(family as u64) << 16 | port as u64, halves[0], halves[1]]
}

/// Where [`connect_unseen`] builds its record: its own, so that it never
/// spoils a record `net_exit` is filling on this CPU.
#[map]
static UNSEEN_SCRATCH: PerCpuArray<NetEvent> = PerCpuArray::with_max_entries(1, 0);

/// TCP socket `sk` starts connecting (CLOSE to SYN_SENT), in the task
/// that connects it (`tcp_v4_connect`, `tcp_v6_connect`: never a softirq).
/// Unless that task is in a connect call, which reports it: sends the
/// socket's record (op [`NET_OP_CONNECT_UNSEEN`], flagged
/// [`net_flags::FAST_OPEN`] where a Fast Open send connects it) and
/// remembers it in [`CONNECTING`], whose state change out of SYN_SENT
/// reports how it ended, as for a non-blocking connect.
///
/// A kernel thread's socket (NFS, iSCSI, a tunnel's) has no process to
/// name: left out. So is an io_uring connect's, where it goes where the
/// request asked (the ring's hooks report it, [`RING_CONNECTS`]).
#[inline(always)]
fn connect_unseen(sk: u64) {
    let current = Current::get();
    // The common case first, and alone: a connect call, which reports it.
    if let Some(p) = inflight::find(&NET_INFLIGHT, &current.thread_key()) {
        // SAFETY: a live map value, this thread's only.
        if unsafe { core::ptr::read_volatile(&(*p).op) } == SyscallOp::Connect as u32 {
            return;
        }
    }
    // A kernel thread has no mm.
    if read_ptr(current.addr(), off!(task_mm)).unwrap_or(0) == 0 {
        return;
    }
    if current.tgid() == crate::maps::sensor_tgid() || crate::filter::task_ignored(current) {
        return;
    }
    let Some(ev) = UNSEEN_SCRATCH.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        return;
    };
    // SAFETY: this CPU's slot; only this function uses it.
    let ev = unsafe { &mut *ev };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        return;
    }
    ev.header.kind = EventKind::Net as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.op = NET_OP_CONNECT_UNSEEN;
    ev.fd = -1;
    ev.ret = -EINPROGRESS;
    // Tells this socket's connect from the task's others (the daemon
    // pairs it with its outcome by task, fd and this).
    ev.arg = (sk >> 3) as u32;
    ev.sockaddr_len = 0;
    ev.kernel_sockaddr_len = 0;
    let fast_open = off!(tcp_fastopen_req) != OFFSET_MISSING
        && read_ptr(sk, off!(tcp_fastopen_req)).is_ok_and(|r| r != 0);
    ev.flags = if fast_open { net_flags::FAST_OPEN } else { 0 };
    clear_endpoints(ev);
    if read_endpoints(ev, sk).is_err() {
        count_error(ProbeError::ReadTask);
    }
    // SAFETY: the value is compared at once.
    if let Some(asked) = unsafe { RING_CONNECTS.get(&sk) } {
        let went = destination_key(ev.family, ev.remote_port, &ev.remote_addr);
        // Element by element: an array compare is a memcmp call, which
        // the build refuses.
        if asked[0] == went[0] && asked[1] == went[1] && asked[2] == went[2] {
            return;
        }
    }
    send_scratch(ev);
    // Its end is the state change out of SYN_SENT, which comes later (the
    // SYN is sent after this).
    if CONNECTING.insert(&sk, &*ev, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
}

/// Makes `ev`, a non-blocking connect's record, the record of its end
/// (state `state`); false if that state is not an end.
#[inline(always)]
fn outcome(ev: &mut NetEvent, sk: u64, state: u32) -> bool {
    ev.op = NET_OP_CONNECT_OUTCOME;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.ret = match state {
        TCP_ESTABLISHED => 0,
        TCP_CLOSE => {
            // tcp_done_with_error sets sk_err before the state; a socket
            // closed by its owner while connecting has none.
            let err = read_u32(sk, off!(sk_err)).unwrap_or(0) as i32 as i64;
            if err > 0 { -err } else { -ECONNABORTED }
        }
        // SYN_SENT to anything else is not an end.
        _ => return false,
    };
    clear_endpoints(ev);
    if read_endpoints(ev, sk).is_err() {
        count_error(ProbeError::ReadTask);
    }
    true
}

#[inline(always)]
fn read_state(sk: u64) -> u32 {
    let mut b = [0u8; 1];
    match read_bytes(sk, off!(skc_state), &mut b) {
        Ok(()) => b[0] as u32,
        Err(_) => 0,
    }
}

/// Family, protocol, type, addresses and ports: all unknown (0).
#[inline(always)]
fn clear_endpoints(ev: &mut NetEvent) {
    // SAFETY: local_addr and remote_addr are adjacent 16-byte arrays at an
    // 8-aligned offset (asserted above).
    unsafe { zero_u64s::<4>(ev.local_addr.as_mut_ptr()) };
    put(&mut ev.local_port, 0);
    put(&mut ev.remote_port, 0);
    put(&mut ev.family, 0);
    put(&mut ev.protocol, 0);
    put(&mut ev.sock_type, 0);
}

/// The head of `struct sock_common` as every kernel lays it out (checked
/// against this kernel's offsets by [`head_in_one_read`]): both IPv4
/// addresses, the hash, both ports, the family.
#[repr(C)]
struct SockHead {
    daddr: u32,
    rcv_saddr: u32,
    _hash: u32,
    dport: u16,
    num: u16,
    family: u16,
}

/// Whether this kernel's offsets put [`SockHead`]'s fields where it has
/// them, and `sk_protocol` right after `sk_type` (two u16s since 5.6):
/// then a socket's ends take two probe reads instead of seven (~25 ns
/// each). The offsets are load-time constants, so the verifier sees one
/// branch of each call site only.
#[inline(always)]
fn head_in_one_read() -> bool {
    let daddr = off!(skc_daddr);
    daddr != OFFSET_MISSING
        && off!(skc_rcv_saddr) == daddr + 4
        && off!(skc_dport) == daddr + 12
        && off!(skc_num) == daddr + 14
        && off!(skc_family) == daddr + 16
        && off!(sk_type) != OFFSET_MISSING
        && off!(sk_protocol) == off!(sk_type) + 2
}

/// Where a socket's ends are written: a network record, or the
/// [`SocketEnds`] of an io_uring completion. Monomorphised and inlined:
/// the network record's fields are written in place, as before.
pub(crate) trait Ends {
    fn set_kind(&mut self, family: u16, protocol: u16, sock_type: u16);
    /// The local address, then the remote one.
    fn addresses(&mut self) -> (&mut [u8; 16], &mut [u8; 16]);
    fn set_ports(&mut self, local: u16, remote: u16);
}

/// Both records name the fields alike.
macro_rules! impl_ends {
    ($($t:ty),*) => {$(
        impl Ends for $t {
            #[inline(always)]
            fn set_kind(&mut self, family: u16, protocol: u16, sock_type: u16) {
                (self.family, self.protocol, self.sock_type) = (family, protocol, sock_type);
            }
            #[inline(always)]
            fn addresses(&mut self) -> (&mut [u8; 16], &mut [u8; 16]) {
                (&mut self.local_addr, &mut self.remote_addr)
            }
            #[inline(always)]
            fn set_ports(&mut self, local: u16, remote: u16) {
                (self.local_port, self.remote_port) = (local, remote);
            }
        }
    )*};
}

impl_ends!(NetEvent, SocketEnds);

/// The `struct sock` of the socket file `file` (0 for none). The caller
/// knows it is a socket (the call on it succeeded, or did not fail as on
/// something else).
#[inline(always)]
pub(crate) fn sock_of_file(file: Result<u64, Miss>) -> u64 {
    file.and_then(|f| read_ptr(f, off!(file_private_data)))
        .and_then(|s| read_ptr(s, off!(socket_sk)))
        .unwrap_or(0)
}

/// Family, protocol, type and both ends of the socket `sk`, over what
/// [`clear_endpoints`] left (for a [`SocketEnds`]: its zeroes).
#[inline(always)]
pub(crate) fn read_endpoints<E: Ends>(e: &mut E, sk: u64) -> Result<(), Miss> {
    if !head_in_one_read() {
        return read_endpoints_each(e, sk);
    }
    let (head_at, kind_at) = (sk + off!(skc_daddr) as u64, sk + off!(sk_type) as u64);
    // SAFETY: probe reads of kernel memory; a failure is an error value.
    let head =
        unsafe { bpf_probe_read_kernel(head_at as *const SockHead) }.map_err(|_| Miss::Fault)?;
    // SAFETY: as above.
    let [sock_type, protocol] =
        unsafe { bpf_probe_read_kernel(kind_at as *const [u16; 2]) }.map_err(|_| Miss::Fault)?;
    e.set_kind(head.family, protocol, sock_type);
    match head.family {
        AF_INET => {
            let (local, remote) = e.addresses();
            local[..4].copy_from_slice(&head.rcv_saddr.to_ne_bytes());
            remote[..4].copy_from_slice(&head.daddr.to_ne_bytes());
        }
        AF_INET6 => read_v6_ends(e, sk)?,
        _ => return Ok(()),
    }
    e.set_ports(head.num, u16::from_be(head.dport));
    Ok(())
}

/// An IPv6 socket's two addresses: one read where they are adjacent (the
/// peer's first), as in every kernel built with IPv6.
#[inline(always)]
fn read_v6_ends<E: Ends>(e: &mut E, sk: u64) -> Result<(), Miss> {
    let daddr = off!(skc_v6_daddr);
    let (local, remote) = e.addresses();
    if daddr == OFFSET_MISSING || off!(skc_v6_rcv_saddr) != daddr + 16 {
        // Absent without CONFIG_IPV6, where no such socket exists.
        read_bytes(sk, off!(skc_v6_rcv_saddr), local)?;
        return read_bytes(sk, daddr, remote);
    }
    // SAFETY: as in read_endpoints.
    let [r, l] = unsafe { bpf_probe_read_kernel((sk + daddr as u64) as *const [[u8; 16]; 2]) }
        .map_err(|_| Miss::Fault)?;
    (*local, *remote) = (l, r);
    Ok(())
}

/// [`read_endpoints`] a field at a time, for a kernel whose layout
/// differs from [`SockHead`].
#[inline(always)]
fn read_endpoints_each<E: Ends>(e: &mut E, sk: u64) -> Result<(), Miss> {
    let family = read_u16(sk, off!(skc_family))?;
    e.set_kind(
        family,
        read_u16(sk, off!(sk_protocol))?,
        read_u16(sk, off!(sk_type))?,
    );
    let (local, remote) = e.addresses();
    match family {
        AF_INET => {
            read_bytes(sk, off!(skc_rcv_saddr), &mut local[..4])?;
            read_bytes(sk, off!(skc_daddr), &mut remote[..4])?;
        }
        AF_INET6 => {
            // Absent without CONFIG_IPV6, where no such socket exists.
            read_bytes(sk, off!(skc_v6_rcv_saddr), local)?;
            read_bytes(sk, off!(skc_v6_daddr), remote)?;
        }
        _ => return Ok(()),
    }
    e.set_ports(
        read_u16(sk, off!(skc_num))?,
        u16::from_be(read_u16(sk, off!(skc_dport))?),
    );
    Ok(())
}
