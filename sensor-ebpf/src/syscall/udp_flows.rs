//! UDP flows without a connect: datagrams a socket sends to an address it
//! is not connected to (sendto, sendmsg, sendmmsg, an io_uring send with a
//! destination), and datagrams it receives with their sender's address
//! (recvfrom, recvmsg, recvmmsg). A DNS query from a script's
//! `socket.sendto`, a C2 beacon, data exfiltrated a datagram at a time, an
//! implant listening on a UDP port: no connect call is made and no socket
//! changes state, so the connect hooks never see such a flow.
//!
//! The hooks: cgroup `sendmsg4`/`sendmsg6` and `recvmsg4`/`recvmsg6`
//! programs at the root of the cgroup v2 hierarchy, which the kernel runs
//! in the UDP send path only for a send that names its destination on a
//! socket not connected to it, and in the receive path only for a
//! receive that asks for the sender's address; in the task, with the
//! kernel's copy of the address. A connected socket's sends, TCP's and
//! every other syscall pay nothing; hooking the send and receive syscalls
//! would have taxed every socket read and write on the host.
//!
//! Reported once per socket and peer, whichever way the first datagram
//! went: it opens the flow, as a connect or an accept would, and the
//! answers that follow are part of it ([`UDP_PEERS`]). The programs
//! always let the datagram through (return 1): they watch, never decide.

use aya_ebpf::EbpfContext;
use aya_ebpf::helpers::generated::bpf_get_socket_cookie;
use aya_ebpf::macros::{cgroup_sock_addr, map};
use aya_ebpf::maps::LruHashMap;
use aya_ebpf::programs::SockAddrContext;
use sensor_common::{EventKind, NET_OP_UDP_RECEIVE, NET_OP_UDP_SEND, NetEvent, ProbeError};

use crate::kernel::{put, read_ptr, read_u32, zero_u64s};
use crate::maps::{count_error, off, sensor_tgid};
use crate::task::Current;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// A connected UDP socket's `state`.
const TCP_ESTABLISHED: u32 = 1;
const BPF_NOEXIST: u64 = 1;
const EEXIST: i32 = 17;
/// What a sendmsg or recvmsg program returns to let the datagram go.
const ALLOW: i32 = 1;

/// The peers each socket has exchanged datagrams with, by `[socket cookie,
/// the peer's net::peer_key]` (a socket's cookie is never
/// reused while the machine runs). LRU: a peer forgotten under pressure
/// (more flows than entries) is reported again at its next datagram, a
/// duplicate rather than a miss.
#[map]
static UDP_PEERS: LruHashMap<[u64; 4], u8> = LruHashMap::with_max_entries(16384, 0);

#[cgroup_sock_addr(sendmsg4)]
pub fn udp_send4(ctx: SockAddrContext) -> i32 {
    udp_datagram(&ctx, AF_INET, NET_OP_UDP_SEND);
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn udp_send6(ctx: SockAddrContext) -> i32 {
    udp_datagram(&ctx, AF_INET6, NET_OP_UDP_SEND);
    ALLOW
}

#[cgroup_sock_addr(recvmsg4)]
pub fn udp_receive4(ctx: SockAddrContext) -> i32 {
    udp_datagram(&ctx, AF_INET, NET_OP_UDP_RECEIVE);
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn udp_receive6(ctx: SockAddrContext) -> i32 {
    udp_datagram(&ctx, AF_INET6, NET_OP_UDP_RECEIVE);
    ALLOW
}

/// A datagram of the current task to or from (`op`) the address in `ctx`
/// (`family`: the hook's, which is the address's).
#[inline(always)]
fn udp_datagram(ctx: &SockAddrContext, family: u16, op: u32) {
    let sa = ctx.sock_addr;
    // SAFETY: ctx is the kernel's bpf_sock_addr, and `sk` the socket, never
    // NULL here; each field is one load of a size the verifier allows (4
    // bytes), rewritten by it into a read of the kernel's own.
    let (port, mut addr, sk) = unsafe {
        let port = u16::from_be((*sa).user_port as u16);
        let mut addr = [0u32; 4];
        if family == AF_INET {
            addr[0] = (*sa).user_ip4;
        } else {
            addr = [
                (*sa).user_ip6[0],
                (*sa).user_ip6[1],
                (*sa).user_ip6[2],
                (*sa).user_ip6[3],
            ];
        }
        (port, addr, (*sa).__bindgen_anon_1.sk)
    };
    // A connected socket receives from its peer alone, which its connect
    // reported.
    // SAFETY: as above.
    if op == NET_OP_UDP_RECEIVE && unsafe { (*sk).state } == TCP_ESTABLISHED {
        return;
    }
    // An IPv6 socket's peer at an IPv4-mapped address is that IPv4
    // address, as its sends to it are (they run the IPv4 hook): one flow.
    let mut family = family;
    if family == AF_INET6 && addr[0] == 0 && addr[1] == 0 && addr[2] == 0xffffu32.to_be() {
        (family, addr) = (AF_INET, [addr[3], 0, 0, 0]);
    }
    // The address as a record holds it (its bytes in memory order), in
    // two halves: the key's and the record's.
    let halves = [
        (addr[1] as u64) << 32 | addr[0] as u64,
        (addr[3] as u64) << 32 | addr[2] as u64,
    ];
    // SAFETY: the helper takes this program type's context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let [ends, low, high] = super::net::peer_key(family, port, halves);
    let key = [cookie, ends, low, high];
    // The common case first, and alone: a peer the socket exchanged
    // datagrams with before. A lookup, not an insert that fails: an LRU
    // map's insert takes a free node off its lists before it looks (149 ns
    // per datagram with the insert first, 76 with the lookup, `cargo xtask
    // bench --only syscalls`).
    // SAFETY: a lookup; the value is not kept.
    if unsafe { UDP_PEERS.get(&key) }.is_some() {
        return;
    }
    // Remembered whoever it is (the sensor's own datagrams, a kernel
    // thread's, a filtered task's), so that their next ones take the lookup
    // alone; of two datagrams racing to open a flow, one goes on.
    match UDP_PEERS.insert(&key, &0, BPF_NOEXIST) {
        Ok(()) => {}
        Err(e) if e == -EEXIST => return,
        // Not remembered: reported, and perhaps again at the next datagram.
        Err(_) => count_error(ProbeError::Inflight),
    }
    let current = Current::get();
    // A kernel thread (no mm) has no process to name: SunRPC's, say.
    if read_ptr(current.addr(), off!(task_mm)).unwrap_or(0) == 0 {
        return;
    }
    // Not `Current::tgid`: its fallback is a helper cgroup programs only
    // have from 6.1.
    if read_u32(current.addr(), off!(task_tgid)).unwrap_or(0) == sensor_tgid() {
        return;
    }
    if crate::filter::task_ignored(current) {
        return;
    }
    // Straight into the ring buffer: this runs with preemption allowed, so
    // a per-CPU scratch slot could be another task's half-written record.
    let Some(mut entry) = crate::ring::reserve::<NetEvent>(EventKind::Net) else {
        return;
    };
    // SAFETY: reserved space for one NetEvent; every field the daemon reads
    // is written below (the caller's addresses are sent as empty).
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        entry.discard(0);
        return;
    }
    put(&mut ev.op, op);
    put(&mut ev.fd, -1);
    put(&mut ev.ret, 0);
    put(&mut ev.arg, 0);
    put(&mut ev.flags, 0);
    put(&mut ev.sockaddr_len, 0);
    put(&mut ev.kernel_sockaddr_len, 0);
    // The addresses below are of the peer's family.
    put(&mut ev.family, family);
    // SAFETY: as above.
    unsafe {
        put(&mut ev.protocol, (*sa).protocol as u16);
        put(&mut ev.sock_type, (*sa).type_ as u16);
        zero_u64s::<2>(ev.local_addr.as_mut_ptr());
        // The socket's own end: its bound address (often the wildcard)
        // and its port, which a send has picked by now.
        put(&mut ev.local_port, (*sk).src_port as u16);
        if family == AF_INET {
            ev.local_addr[..4].copy_from_slice(&(*sk).src_ip4.to_ne_bytes());
        } else {
            for (i, word) in (*sk).src_ip6.iter().enumerate() {
                ev.local_addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
        }
    }
    ev.remote_addr[..8].copy_from_slice(&halves[0].to_ne_bytes());
    ev.remote_addr[8..].copy_from_slice(&halves[1].to_ne_bytes());
    put(&mut ev.remote_port, port);
    entry.submit(0);
}
