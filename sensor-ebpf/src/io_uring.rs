//! io_uring requests of file and network operations (see
//! `sensor_common::io_uring` for why and which): one raw tracepoint on
//! the kernel's submit tracepoint, which fires in the submitting task
//! (the caller of io_uring_enter, or the ring's SQPOLL thread, a thread
//! of the same process since 5.12, sharing its files and cwd) for every
//! request, after the kernel prepared it.
//!
//! Where the tracepoint passes the request (5.19+), the record carries
//! what the prepared command holds: the paths the kernel already copied
//! (`struct filename`), the directory fd, the open flags and mode, and a
//! connect's address (read from the caller's memory: the kernel copied it
//! too, into the request's async data, from 6.10 when it prepared the
//! request, before when it runs it; a thread of the caller can change it
//! in between, so the completion names the socket's peer, see
//! [`socket_ends`]). Before, the opcode alone.
//!
//! Where the completion tracepoint passes the request too (5.19+), a
//! second program reports the result of each request the first reported:
//! the submit hook remembers the request (by address, in an LRU map), the
//! completion hook looks it up and sends the result in a record of its
//! own, naming the submission by its record's time. An open's completion
//! names the file opened, walked from the new fd; a connect's, an
//! accept's, a bind's and a listen's, their socket's ends. An open that
//! the path
//! filter dropped by its argument is held there instead, for its
//! completion to decide by that file (see [`hold`]); one whose success
//! posts no completion (`IOSQE_CQE_SKIP_SUCCESS`), and a request that
//! makes, moves or removes a name, are reported at submission, marked.
//!
//! The submit hook builds a reported request's record; a stage it
//! tail-calls walks the directories its relative paths start from (or
//! the file an fd-based request acts on) and sends it: walks are what the
//! verifier spends most on, and in the hook they left it too little of
//! its budget for a second directory's.
//!
//! Cost on the ring's other traffic (reads, writes): in each hook, the
//! opcode read (a probe read through the request) and a mask test.

use aya_ebpf::EbpfContext as _;
use aya_ebpf::helpers::generated::{bpf_probe_read_kernel, bpf_probe_read_user};
use aya_ebpf::macros::map;
use aya_ebpf::maps::{LruHashMap, PerCpuArray, ProgramArray};
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::io_uring::{
    CQE_F_MORE, CQE_RES, CQE_USER_DATA, REPORTED, REQ_F_CQE_SKIP, REQ_F_FIXED_FILE,
    SECOND_PATH_HAS_DIR, acts_on_fd, changes_names, names_links, op, opens, sets_xattr,
};
use sensor_common::{
    AT_EMPTY_PATH, AT_FDCWD, EventKind, OFFSET_MISSING, ProbeError, SOCKADDR_CAP, SYS_OP_IO_URING,
    SYS_OP_IO_URING_COMPLETE, SYS_STR_CAP, SYS_STR0_CAP, SocketEnds, SysEvent, XATTR_NAME_CAP,
    XATTR_VALUE_CAP, has_other_names, sys_flags,
};

use crate::kernel::{
    Miss, copy_len, field, plus, put, read_ptr, read_u8, read_u16, read_u32, read_u64, zero_u64s,
};
use crate::maps::{SCRATCH, count_error, off, scratch, sensor_tgid};
use crate::path::{Walk, Writer, write_found_path};
use crate::syscall::read_kernel_str;
use crate::task::Current;

const FIXED: usize = core::mem::size_of::<SysEvent>();

/// Requests reported at submission and not completed yet: request
/// address to the submission record's `boot_ns`. LRU: a request whose
/// completion posts nothing (one submitted with `IOSQE_CQE_SKIP_SUCCESS`
/// that succeeded, a ring torn down with requests in flight) ages out
/// instead of filling it. Only the completion hook of a kernel that
/// passes the request reads it; the submit hook fills it wherever it has
/// the request (a few map writes on reported requests only).
#[map]
static IO_URING_REPORTED: LruHashMap<u64, u64> = LruHashMap::with_max_entries(8192, 0);

/// Reported accepts, by ring (`io_ring_ctx` address) and `user_data`, to
/// [submission record's `boot_ns`, opcode | [`INTO_SLOT`]]: a multishot accept's
/// completions per connection are posted without the request, naming it
/// only so. Entries outlive single-shot accepts until their completion
/// removes them, or age out.
#[map]
static IO_URING_MULTISHOT: LruHashMap<[u64; 2], [u64; 2]> = LruHashMap::with_max_entries(1024, 0);

/// The submit hook's stage (slot 0, [`io_uring_submit_walks`]); the
/// daemon fills it at load.
#[map]
static IO_URING_STAGES: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Offsets inside the record's data are masked with this: every string
/// is below 4 KiB, so three of them end below it, well inside the
/// scratch slot.
const STR_MASK: usize = 0x3FFF;

/// Written out instead of with aya's macro, whose inner function LLVM
/// left un-inlined here: a BPF-to-BPF call, which the build refuses (see
/// `syscall_programs`). The section has no tracepoint: the daemon attaches
/// it to whichever submit tracepoint the kernel has.
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub extern "C" fn io_uring_submit(ctx: *mut core::ffi::c_void) -> u32 {
    submit(&RawTracePointContext::new(ctx))
}

#[inline(always)]
fn submit(ctx: &RawTracePointContext) -> u32 {
    let Some((opcode, req)) = request(ctx) else {
        return 0;
    };
    if opcode >= 64 || REPORTED & (1 << opcode) == 0 {
        return 0;
    }
    let current = Current::get();
    if current.tgid() == sensor_tgid() || crate::filter::task_ignored(current) {
        return 0;
    }
    // Exec's slot: exec and this hook both run with preemption off, in a
    // task, never in an interrupt, so neither can interleave with the
    // other on one CPU; the syscall programs (whose hooks may be
    // preemptible) have their own.
    let Some(buf) = scratch(&SCRATCH) else {
        return 0;
    };
    // SAFETY: this CPU's scratch slot, 8-aligned, larger than SysEvent.
    let ev = unsafe { &mut *buf.cast::<SysEvent>() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        return 0;
    }
    ev.header.kind = EventKind::System as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.op = SYS_OP_IO_URING;
    ev.flags = 0;
    ev.ret = 0;
    // Each put volatile: LLVM otherwise makes runs of zeros a memset, a
    // BPF-to-BPF call.
    put(&mut ev.args[0], opcode as u64);
    put(&mut ev.args[1], AT_FDCWD as u32 as u64);
    put(&mut ev.args[2], 0);
    put(&mut ev.args[3], 0);
    for len in &mut ev.str_lens {
        put(len, 0);
    }
    ev.base_len = 0;
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    let mut end = 0;
    if let Some(req) = req {
        end = arguments(ev, data, opcode, req);
        // SAFETY: the data's first SYS_STR0_CAP bytes, inside the scratch
        // value; the path, if any, is there.
        let path = unsafe { &*data.cast::<[u8; SYS_STR0_CAP]>() };
        if crate::filter::path_ignored(path, ev.str_lens[0])
            && !privileged_xattr_change(opcode, ev, data)
        {
            // An open goes by its argument only if the file it opens is
            // under an ignored directory too: its completion decides. One
            // whose success posts no completion cannot be decided there
            // (`/tmp/ignored/l -> /etc/shadow`, IOSQE_CQE_SKIP_SUCCESS),
            // nor can a request that changes names, by any means (`mv
            // /tmp/ignored/x /etc/cron.d/`, `/tmp/ignored/etc -> /etc`):
            // those are reported now, marked. The rest (a user.* xattr)
            // changes no privilege wherever it lands.
            if opens(opcode) {
                let flags = read_u32(req, off!(io_kiocb_flags)).unwrap_or(REQ_F_CQE_SKIP);
                if flags & REQ_F_CQE_SKIP == 0 {
                    hold(req);
                    return 0;
                }
            } else if !changes_names(opcode) {
                return 0;
            }
            ev.flags |= sys_flags::ARGUMENT_IGNORED;
        }
    }
    // Where a relative path starts: the cwd, or the directory fd.
    let relative = ev.str_lens[0] > 0
        // SAFETY: the first byte of the data, inside the scratch value.
        && unsafe { *data } != b'/';
    // The file an fd-based request acts on (not a registered file's, whose
    // table is the ring's).
    let on_fd = req.is_some()
        && acts_on_fd(opcode)
        && ev.flags & sys_flags::FIXED_FILE == 0
        && (ev.args[1] as u32 as i32) >= 0;
    if on_fd {
        ev.flags |= sys_flags::FILE_WALKED;
    }
    // A rename's or hard link's second path starts from a directory fd of
    // its own (args[3]). The base is the first path's directory where that
    // is relative, else the second's (`mv /tmp/x` into a directory fd of
    // `/etc/cron.d`); where both are relative to different fds, the
    // second's is walked too (`base2`). The daemon joins each relative
    // path to its directory, as the watch family does for the syscalls. A
    // hard link of the file open at its fd (AT_EMPTY_PATH: an O_TMPFILE
    // file given a name) walks that file as it would that directory.
    let relative2 = SECOND_PATH_HAS_DIR >> opcode & 1 != 0
        && (ev.flags & sys_flags::SECOND_IS_FILE != 0
            || (ev.str_lens[1] > 0
                // SAFETY: the second string's first byte, at a masked
                // offset inside the scratch value.
                && unsafe { *data.add(ev.str_lens[0] as usize & STR_MASK) } != b'/'));
    if relative && relative2 && ev.args[1] as u32 != ev.args[3] as u32 {
        ev.flags |= sys_flags::BASE2_UNKNOWN;
    }
    let second = !relative && relative2;
    let base_fd = if second {
        ev.args[3] as u32
    } else if relative || on_fd {
        ev.args[1] as u32
    } else {
        NO_WALK
    };
    ev.header.size = (FIXED + end) as u32;
    // The walks are the stage's, which sends the record: walked here, the
    // verifier's count of this hook was 545k to 630k instructions (of its
    // million), and the second directory took it to 760k.
    if let Some(args) = STAGE_ARGS.get_ptr_mut(0) {
        // SAFETY: this CPU's value of the map, written before the stage
        // reads it in the same run.
        unsafe { *args = [req.unwrap_or(0), base_fd as u64] };
        crate::tail_call::tail_call!(ctx.as_ptr(), IO_URING_STAGES, 0);
    }
    // No stage: sent with its paths as given.
    count_error(ProbeError::TailCall);
    let size = FIXED + end;
    // SAFETY: size <= FIXED + STR_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::System, buf, size) };
    0
}

/// [`STAGE_ARGS`]' base fd where no directory is walked (no fd is).
const NO_WALK: u32 = u32::MAX;

/// What the submit hook passes its stage besides the record: the request
/// (0 where the tracepoint does not pass it) and the fd whose file is
/// walked as the base, or [`NO_WALK`]. Per CPU: the stage runs on the
/// hook's CPU, in the same run.
#[map]
static STAGE_ARGS: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// The submit hook's stage, reached by tail call (never attached): walks
/// the directories (or the file) the record built in this CPU's scratch
/// names, and sends it. The base is the one [`STAGE_ARGS`] names; a
/// rename's or hard link's second path relative to a directory fd of its
/// own (`args[3]`, [`sys_flags::BASE2_UNKNOWN`]) gets that directory too,
/// after the base, as the third string ([`sys_flags::STR2_AFTER_BASE`]).
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub extern "C" fn io_uring_submit_walks(_ctx: *mut core::ffi::c_void) -> u32 {
    let Some(buf) = scratch(&SCRATCH) else {
        return 0;
    };
    let Some(&[req, base_fd]) = STAGE_ARGS.get(0) else {
        return 0;
    };
    // SAFETY: the hook built a SysEvent at the slot's start.
    let ev = unsafe { &mut *buf.cast::<SysEvent>() };
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    let task = Current::get().addr();
    // Masked as the walks mask their positions: with the strings' mask,
    // the verifier went past its limits (E2BIG), where it walks about
    // 140k instructions so.
    let start = (ev.header.size as usize).wrapping_sub(FIXED) & crate::maps::DATA_MASK;
    let mut w = Writer { data, pos: start };
    if base_fd as u32 != NO_WALK {
        let walk = write_found_path(&mut w, crate::syscall::dir_path(task, base_fd as i32));
        match walk {
            Walk::Complete => {}
            Walk::Truncated => ev.flags |= sys_flags::TRUNCATED,
            Walk::Failed => count_error(ProbeError::ReadPath),
        }
        ev.base_len = w.since(start) as u32;
    }
    // SAFETY: a field of the record; read back from memory (volatile) so
    // that no value is kept live across the walk above.
    let flags = unsafe { core::ptr::read_volatile(&ev.flags) };
    if flags & sys_flags::BASE2_UNKNOWN != 0 {
        let start2 = w.pos;
        let second = crate::syscall::dir_path(task, ev.args[3] as u32 as i32);
        match write_found_path(&mut w, second) {
            Walk::Complete => {}
            Walk::Truncated => ev.flags |= sys_flags::TRUNCATED,
            Walk::Failed => count_error(ProbeError::ReadPath),
        }
        ev.flags |= sys_flags::STR2_AFTER_BASE;
        ev.str_lens[2] = w.since(start2) as u32;
    }
    let size = FIXED + (w.pos & crate::maps::DATA_MASK);
    ev.header.size = size as u32;
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    let sent = unsafe { crate::ring::output(EventKind::System, buf, size) };
    if !sent {
        return 0;
    }
    // The completion names the submission by its record's time: only a
    // request whose record went out is remembered.
    // SAFETY: as for the flags.
    let opcode = unsafe { core::ptr::read_volatile(&ev.args[0]) } as u8;
    if req != 0 {
        // SAFETY: as for the flags.
        remember(req, opcode, unsafe {
            core::ptr::read_volatile(&ev.header.boot_ns)
        });
        if opcode == op::CONNECT {
            connect_submitted(req, ev, data);
        }
    }
    // A symlink may lead through a magic link (`/tmp/c -> /proc/self/cwd`),
    // which the watch family's path check knows only once the daemon has
    // read this record (and so does such a link renamed or linked): counted
    // as the syscall's symlinks are (see `syscall::watch::symlink_sent`).
    // After the record, unlike theirs: the name is made later, when the
    // request runs, and its maker's next call comes after that (another
    // of its threads' calls in the nanoseconds between are the way left).
    if names_links(opcode) {
        crate::syscall::watch::symlink_sent();
    }
    0
}

/// Tells the network family's check for connects made outside connect
/// calls (`syscall::net::connect_unseen`) that connect request `req`
/// (record `ev`, its address the record's third string in `data`) is the
/// ring's: its socket, looked up in the submitter's fd table (the request
/// takes its file from there when it runs), and where it asked to go.
/// Not for a registered file, whose table is the ring's.
#[inline(always)]
fn connect_submitted(req: u64, ev: &SysEvent, data: *const u8) {
    let flags = read_u32(req, off!(io_kiocb_flags)).unwrap_or(REQ_F_FIXED_FILE);
    if flags & REQ_F_FIXED_FILE != 0 {
        return;
    }
    let Ok(fd) = read_u32(req, plus(off!(io_kiocb_cqe), off!(io_cqe_fd))) else {
        return;
    };
    let sk = crate::syscall::net::sock_of_file(Current::get().fd_file(fd as i32));
    if sk == 0 {
        return;
    }
    let at = (ev.str_lens[0] as usize + ev.str_lens[1] as usize) & STR_MASK;
    // SAFETY: a masked offset: SOCKADDR_CAP bytes from it are inside the
    // scratch value.
    let sockaddr = unsafe { &*data.add(at).cast::<[u8; SOCKADDR_CAP]>() };
    crate::syscall::net::ring_connect_submitted(sk, sockaddr, ev.str_lens[2] as usize);
}

/// [`IO_URING_REPORTED`]'s value for a request not reported at its
/// submission, whose completion decides (no record's time is 0).
const HELD: u64 = 0;

/// Keeps open request `req`, dropped at submission by its path argument,
/// for its completion to decide by the file opened: a symlink under an
/// ignored prefix can lead anywhere (`/tmp/ignored/l -> /etc/shadow`).
#[inline(always)]
fn hold(req: u64) {
    if IO_URING_REPORTED.insert(&req, &HELD, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
}

/// Remembers reported request `req` for its completion hook; an accept
/// also by ring and `user_data`, which is all that its multishot
/// completions name.
#[inline(always)]
fn remember(req: u64, opcode: u8, boot_ns: u64) {
    if IO_URING_REPORTED.insert(&req, &boot_ns, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
    if opcode == op::ACCEPT {
        if let Some(key) = ring_key(req) {
            let slot = if installs_fd(opcode, req) {
                0
            } else {
                INTO_SLOT
            };
            let value = [boot_ns, opcode as u64 | slot];
            if IO_URING_MULTISHOT.insert(&key, &value, 0).is_err() {
                count_error(ProbeError::Inflight);
            }
        }
    }
}

/// In [`IO_URING_MULTISHOT`]'s values: the accept puts its connections
/// into the ring's registered files, not the process's fds.
const INTO_SLOT: u64 = 1 << 8;

/// Whether request `req` of `opcode` (an open or an accept) installs a
/// new fd of the process's as its result: not one into a registered
/// file's slot (5.15+), whose result is 0 or the slot's index.
#[inline(always)]
fn installs_fd(opcode: u8, req: u64) -> bool {
    let slot = if opcode == op::ACCEPT {
        off!(io_accept_file_slot)
    } else {
        off!(io_open_file_slot)
    };
    // Before 5.15 there are no slots (the field is missing).
    slot == OFFSET_MISSING
        || field(req, off!(io_kiocb_cmd)).is_ok_and(|cmd| read_u32(cmd, slot).is_ok_and(|s| s == 0))
}

/// Request `req`'s ring and `user_data`: what its CQEs carry.
#[inline(always)]
fn ring_key(req: u64) -> Option<[u64; 2]> {
    let ring = read_ptr(req, off!(io_kiocb_ctx)).ok()?;
    let user_data = read_u64(req, off!(io_kiocb_user_data)).ok()?;
    Some([ring, user_data])
}

/// Written out like [`io_uring_submit`]; attached to `io_uring_complete`
/// only where the daemon found the request among its arguments.
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub extern "C" fn io_uring_complete(ctx: *mut core::ffi::c_void) -> u32 {
    complete(ctx)
}

/// A completion: if the submit hook reported its request, sends its result
/// (and forgets the request, unless it completes again). The tracepoint
/// passes the request with a request's own completion; a multishot
/// request's completions that announce more to come (`IORING_CQE_F_MORE`)
/// are posted without it, and are found by ring and `user_data`.
///
/// The record carries the completing task, which is the submitting
/// process: its thread that submitted or reaps, its SQPOLL thread or an
/// io-wq worker of it (completions are posted in task context, never in
/// an interrupt, since the kernels that pass the request).
///
/// An open's completion also names the file opened, walked from the new
/// fd: what the path led to, through symlinks. An open held at its
/// submission (see [`hold`]) is reported here alone, unless that file is
/// under an ignored directory too, or nothing was opened.
#[inline(always)]
fn complete(ctx: *mut core::ffi::c_void) -> u32 {
    // One call of send_result: a second would leave its closure out of
    // line, a BPF-to-BPF call.
    if let Some(done) = completed(ctx) {
        send_result(done);
    }
    0
}

/// A completion to report (see [`completed`]).
struct Completed {
    opcode: u8,
    /// The submission record's time, or [`HELD`].
    submitted: u64,
    res: i32,
    cqe_flags: u64,
    /// 0 where the completion does not pass the request.
    req: u64,
    /// Without the request (a multishot accept's): its submission put
    /// connections into registered slots ([`INTO_SLOT`]).
    into_slot: bool,
}

/// The reported (or held) request this completion ends or continues.
#[inline(always)]
fn completed(ctx: *mut core::ffi::c_void) -> Option<Completed> {
    let req = arg(ctx, off!(io_uring_complete_req_arg))?;
    if req == 0 {
        return completed_multishot(ctx);
    }
    let opcode = read_u8(req, off!(io_kiocb_opcode)).ok()?;
    if opcode >= 64 || REPORTED & (1 << opcode) == 0 {
        return None;
    }
    // SAFETY: the value is copied out at once.
    let submitted = (unsafe { IO_URING_REPORTED.get(&req) }).copied()?;
    let Some((res, cqe_flags)) = result(ctx) else {
        count_error(ProbeError::ReadArg);
        return None;
    };
    if cqe_flags & CQE_F_MORE == 0 {
        // The delete decides who reports a last completion, should two
        // ever race: exactly one succeeds.
        IO_URING_REPORTED.remove(&req).ok()?;
        if opcode == op::ACCEPT {
            if let Some(key) = ring_key(req) {
                let _ = IO_URING_MULTISHOT.remove(&key);
            }
        }
        if opcode == op::CONNECT {
            let file = read_ptr(req, off!(io_kiocb_cmd));
            crate::syscall::net::ring_connect_completed(crate::syscall::net::sock_of_file(file));
        }
    }
    Some(Completed {
        opcode,
        submitted,
        res,
        cqe_flags,
        req,
        into_slot: false,
    })
}

/// A completion posted without its request: a multishot accept's, found
/// by ring and `user_data`. Only those announcing more to come are looked
/// up (the last comes with the request): a busy ring's multishot receives
/// cost one failed lookup each.
#[inline(always)]
fn completed_multishot(ctx: *mut core::ffi::c_void) -> Option<Completed> {
    let Some((res, cqe_flags)) = result(ctx) else {
        count_error(ProbeError::ReadArg);
        return None;
    };
    if cqe_flags & CQE_F_MORE == 0 {
        return None;
    }
    let (Some(ring), Some(user_data)) = (arg(ctx, 0), user_data(ctx)) else {
        count_error(ProbeError::ReadArg);
        return None;
    };
    // SAFETY: the value is copied out at once.
    let [submitted, opcode] = (unsafe { IO_URING_MULTISHOT.get(&[ring, user_data]) }).copied()?;
    Some(Completed {
        opcode: opcode as u8,
        submitted,
        res,
        cqe_flags,
        req: 0,
        into_slot: opcode & INTO_SLOT != 0,
    })
}

/// Sends the result of a request whose submission record went out (or
/// was held: [`HELD`]); an open's with the file opened, a connect's or an
/// accept's with its socket's ends. args: `[opcode, submitted, CQE flags,
/// a held open's flags]`.
#[inline(always)]
fn send_result(done: Completed) {
    let Completed {
        opcode,
        submitted,
        res,
        cqe_flags,
        req,
        into_slot,
    } = done;
    let current = Current::get();
    // The submit hook's slot: both hooks run with preemption off, in a
    // task (see `submit`), and neither fires inside the other.
    let Some(buf) = scratch(&SCRATCH) else {
        return;
    };
    // SAFETY: this CPU's scratch slot, 8-aligned, larger than SysEvent.
    let ev = unsafe { &mut *buf.cast::<SysEvent>() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        return;
    }
    ev.header.kind = EventKind::System as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    let args = [opcode as u64, submitted, cqe_flags, 0];
    crate::syscall::sys::fill_bare(ev, SYS_OP_IO_URING_COMPLETE, 0, res as i64, args);
    let cmd = field(req, off!(io_kiocb_cmd)).unwrap_or(0);
    // The result is a new fd of the process's (an open's or an accept's,
    // not one into a registered file's slot): told by the request, or for
    // a multishot accept's completion by what its submission kept. Read
    // only for a result that can be one.
    let new_fd = res >= 0
        && (opens(opcode) || opcode == op::ACCEPT)
        && if req != 0 {
            installs_fd(opcode, req)
        } else {
            !into_slot
        };
    let fd_opened = opens(opcode) && new_fd;
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    let mut w = Writer { data, pos: 0 };
    let mut walked = false;
    let mut other_names = false;
    if fd_opened {
        ev.flags |= sys_flags::FILE_WALKED;
        let file = current.fd_file(res);
        if submitted == HELD {
            let inode = file.and_then(|f| read_ptr(f, off!(file_inode)));
            let mode = inode.and_then(|i| read_u16(i, off!(inode_mode)));
            let nlink = inode.and_then(|i| read_u32(i, off!(inode_nlink)));
            if let (Ok(mode), Ok(nlink)) = (mode, nlink) {
                other_names = has_other_names(mode as u32, nlink);
            }
        }
        match write_found_path(&mut w, file.and_then(|f| field(f, off!(file_path)))) {
            Walk::Complete => walked = true,
            Walk::Truncated => ev.flags |= sys_flags::TRUNCATED,
            Walk::Failed => count_error(ProbeError::ReadPath),
        }
        ev.base_len = w.since(0) as u32;
    }
    if socket_ends(opcode, res, req, new_fd, current, data) {
        ev.flags |= sys_flags::SOCKET_ENDS;
        ev.str_lens[0] = size_of::<SocketEnds>() as u32;
        w.pos = size_of::<SocketEnds>();
    }
    if submitted == HELD {
        // Nothing opened: the argument decides, as it did. Opened, under
        // an ignored directory: dropped, unless the file has other names
        // (a hard link under the prefix can name any file: walked from
        // the fd, the path is the link's). Not told (a registered file, a
        // walk cut short): reported.
        let under = walked && !other_names && crate::filter::walked_path_ignored(data, 0, w.pos);
        if res < 0 || under {
            return;
        }
        ev.flags |= sys_flags::ARGUMENT_IGNORED;
        if other_names {
            ev.flags |= sys_flags::OTHER_NAMES;
        }
        let how = off!(io_open_how);
        ev.args[3] = read_u64(cmd, plus(how, off!(open_how_flags))).unwrap_or(0);
    }
    let size = FIXED + (w.pos & crate::maps::DATA_MASK);
    ev.header.size = size as u32;
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::System, buf, size) };
}

/// Writes at `data` the ends of the socket a connect connected (0, or
/// EINPROGRESS for a socket of the caller's made non-blocking: then
/// connecting), a bind bound or a listen made listen (6.11+), or an
/// accept accepted (`res`, where it is an fd of the process's): the
/// kernel's own state, where the submission's address was read from the
/// caller's memory, which a thread can rewrite after the kernel copied it
/// (a bind's submission has none: the port the kernel picked for port 0
/// is only here). Whether it did.
#[inline(always)]
fn socket_ends(
    opcode: u8,
    res: i32,
    req: u64,
    new_fd: bool,
    current: Current,
    data: *mut u8,
) -> bool {
    const EINPROGRESS: i32 = 115;
    let file = match opcode {
        // The request's file is the socket (`io_kiocb.file`: where the
        // command starts, see `io_kiocb_cmd`), a registered one too.
        op::CONNECT if (res == 0 || res == -EINPROGRESS) && req != 0 => {
            read_ptr(req, off!(io_kiocb_cmd))
        }
        op::BIND | op::LISTEN if res == 0 && req != 0 => read_ptr(req, off!(io_kiocb_cmd)),
        // The completing task shares the submitter's fds (an io-wq
        // worker is a thread of the process).
        op::ACCEPT if new_fd => current.fd_file(res),
        _ => return false,
    };
    let sk = crate::syscall::net::sock_of_file(file);
    if sk == 0 {
        return false;
    }
    const WORDS: usize = size_of::<SocketEnds>() / 8;
    // SAFETY: the data's start, 8-aligned (FIXED is) and inside the
    // scratch value; nothing else is written there for these requests. Zeroed first (as u64s: a struct literal of zeroes is a
    // memset call, which the build refuses), since not every field is
    // read for every family.
    let ends = unsafe {
        zero_u64s::<WORDS>(data);
        &mut *data.cast::<SocketEnds>()
    };
    if crate::syscall::net::read_endpoints(ends, sk).is_err() {
        count_error(ProbeError::ReadTask);
        return false;
    }
    true
}

/// The completion's `user_data`: an argument before the result (5.19 to
/// 6.2), or the completion entry's first field (since).
#[inline(always)]
fn user_data(ctx: *mut core::ffi::c_void) -> Option<u64> {
    let res_arg = off!(io_uring_complete_res_arg);
    if res_arg != OFFSET_MISSING {
        return arg(ctx, res_arg - 1);
    }
    let cqe = arg(ctx, off!(io_uring_complete_cqe_arg))?;
    read_u64(cqe, CQE_USER_DATA).ok()
}

/// The completion's result and CQE flags: arguments of the tracepoint
/// (5.19 to 6.2: `int res, unsigned cflags`), or the fields of the
/// completion entry it passes (since).
#[inline(always)]
fn result(ctx: *mut core::ffi::c_void) -> Option<(i32, u64)> {
    let res_arg = off!(io_uring_complete_res_arg);
    if res_arg != OFFSET_MISSING {
        let res = arg(ctx, res_arg)?;
        let flags = arg(ctx, res_arg + 1)?;
        return Some((res as i32, flags as u32 as u64));
    }
    let cqe = arg(ctx, off!(io_uring_complete_cqe_arg))?;
    // res (s32) and flags (u32), adjacent: one read.
    let both = read_u64(cqe, CQE_RES).ok()?;
    Some((both as u32 as i32, both >> 32))
}

/// The request's opcode, and the request where the tracepoint passes it,
/// from wherever this kernel's tracepoint has them (the daemon found the
/// position in BTF).
#[inline(always)]
fn request(ctx: &RawTracePointContext) -> Option<(u8, Option<u64>)> {
    let ctx = ctx.as_ptr();
    let req_arg = off!(io_uring_req_arg);
    if req_arg != OFFSET_MISSING {
        let req = arg(ctx, req_arg)?;
        return Some((read_u8(req, off!(io_kiocb_opcode)).ok()?, Some(req)));
    }
    let opcode_arg = off!(io_uring_opcode_arg);
    if opcode_arg != OFFSET_MISSING {
        return Some((arg(ctx, opcode_arg)? as u8, None));
    }
    None
}

/// Argument `i` of a raw tracepoint's context (the first five; None for
/// [`OFFSET_MISSING`] or beyond).
#[inline(always)]
fn arg(ctx: *mut core::ffi::c_void, i: u32) -> Option<u64> {
    Some(match i {
        0 => ctx_arg::<0>(ctx),
        1 => ctx_arg::<1>(ctx),
        2 => ctx_arg::<2>(ctx),
        3 => ctx_arg::<3>(ctx),
        4 => ctx_arg::<4>(ctx),
        _ => return None,
    })
}

/// Argument `N` of a raw tracepoint's context, loaded at a constant
/// offset from the unmoved context pointer. In asm: written as plain or
/// volatile loads, LLVM turns the caller's choice of position into one
/// load through a moved context pointer, which 5.10's verifier refuses.
/// (The daemon's position is a load-time constant, so the verifier
/// follows one arm, and the tracepoint need not have the others'
/// arguments.)
#[inline(always)]
fn ctx_arg<const N: usize>(ctx: *mut core::ffi::c_void) -> u64 {
    let v: u64;
    // SAFETY: a load of the context's argument slot N, which the verifier
    // checks against the tracepoint's arguments.
    unsafe {
        core::arch::asm!(
            "{v} = *(u64 *)({ctx} + {off})",
            v = out(reg) v,
            ctx = in(reg) ctx,
            off = const N * 8,
            options(readonly, nostack, preserves_flags),
        );
    }
    v
}

/// Fills `ev.args[1..]`, its strings and their lengths from the prepared
/// command of request `req`: the path (str0; a link's new name), a second
/// path (str1: a rename's new name, the file a hard link names, a
/// symlink's target), a connect's address (str2), an xattr's name (str1)
/// and value (str2). args: `[opcode, dfd, flags, mode]`; an fd-based
/// request's fd is args[1] (-1 unread, `FIXED_FILE` for a registered
/// file's index); an ftruncate's length args[2] (where args[3] is 1); a
/// rename's `RENAME_*` flags args[2]; the directory fd of a rename's or
/// hard link's second path args[3] (-1 unread). The data's end.
#[inline(always)]
fn arguments(ev: &mut SysEvent, data: *mut u8, opcode: u8, req: u64) -> usize {
    let Ok(cmd) = field(req, off!(io_kiocb_cmd)) else {
        return 0;
    };
    let (path, path2, dfd) = match opcode {
        op::OPENAT | op::OPENAT2 => {
            let how = off!(io_open_how);
            ev.args[2] = read_u64(cmd, plus(how, off!(open_how_flags))).unwrap_or(0);
            ev.args[3] = read_u64(cmd, plus(how, off!(open_how_mode))).unwrap_or(0);
            (off!(io_open_filename), OFFSET_MISSING, off!(io_open_dfd))
        }
        op::UNLINKAT => {
            ev.args[2] = read_u32(cmd, off!(io_unlink_flags)).unwrap_or(0) as u64;
            (
                off!(io_unlink_filename),
                OFFSET_MISSING,
                off!(io_unlink_dfd),
            )
        }
        op::MKDIRAT => {
            ev.args[3] = read_u32(cmd, off!(io_mkdir_mode)).unwrap_or(0) as u64;
            (off!(io_mkdir_filename), OFFSET_MISSING, off!(io_mkdir_dfd))
        }
        op::RENAMEAT => {
            ev.args[2] = read_u32(cmd, off!(io_rename_flags)).unwrap_or(0) as u64;
            ev.args[3] = read_u32(cmd, off!(io_rename_new_dfd)).unwrap_or(u32::MAX) as u64;
            (
                off!(io_rename_oldpath),
                off!(io_rename_newpath),
                off!(io_rename_old_dfd),
            )
        }
        // The path is the new name, joined to its directory (new_dfd):
        // where the link lands (a cron or systemd directory) is what a
        // link is reported for, as the watch family's links are; the file
        // linked to (from old_dfd, in args[3]), or a symlink's target (a
        // string the link will hold, not a path resolved now: its args[3]
        // is whatever the unused field holds), comes second.
        op::LINKAT | op::SYMLINKAT => {
            ev.args[2] = read_u32(cmd, off!(io_link_flags)).unwrap_or(0) as u64;
            ev.args[3] = read_u32(cmd, off!(io_link_old_dfd)).unwrap_or(u32::MAX) as u64;
            (
                off!(io_link_newpath),
                off!(io_link_oldpath),
                off!(io_link_new_dfd),
            )
        }
        op::FTRUNCATE => {
            // args[3] says whether args[2] holds the length.
            if let Ok(len) = read_u64(cmd, off!(io_ftrunc_len)) {
                (ev.args[2], ev.args[3]) = (len, 1);
            }
            (OFFSET_MISSING, OFFSET_MISSING, OFFSET_MISSING)
        }
        op::SETXATTR | op::FSETXATTR => {
            let ctx = off!(io_xattr_ctx);
            ev.args[2] = read_u64(cmd, plus(ctx, off!(xattr_ctx_size))).unwrap_or(0);
            ev.args[3] = read_u32(cmd, plus(ctx, off!(xattr_ctx_flags))).unwrap_or(0) as u64;
            let path = if opcode == op::SETXATTR {
                off!(io_xattr_filename)
            } else {
                OFFSET_MISSING
            };
            (path, OFFSET_MISSING, OFFSET_MISSING)
        }
        _ => (OFFSET_MISSING, OFFSET_MISSING, OFFSET_MISSING),
    };
    if let Ok(fd) = read_u32(cmd, dfd) {
        ev.args[1] = fd as u64;
    }
    if acts_on_fd(opcode) {
        // -1 where unread: never the cwd's AT_FDCWD.
        let fd = read_u32(req, plus(off!(io_kiocb_cqe), off!(io_cqe_fd)));
        ev.args[1] = fd.unwrap_or(u32::MAX) as u64;
        let flags = read_u32(req, off!(io_kiocb_flags)).unwrap_or(0);
        if flags & REQ_F_FIXED_FILE != 0 {
            ev.flags |= sys_flags::FIXED_FILE;
        }
    }
    let len0 = filename(data, 0, SYS_STR0_CAP, cmd, path, &mut ev.flags);
    let mut len1 = filename(data, len0, SYS_STR_CAP, cmd, path2, &mut ev.flags);
    let mut len2 = 0;
    if opcode == op::CONNECT {
        len2 = sockaddr(data, len0 + len1, cmd, &mut ev.flags);
    } else if sets_xattr(opcode) {
        (len1, len2) = xattr(data, len0, cmd, ev.args[2], &mut ev.flags);
    } else if opcode == op::LINKAT && len1 == 0 && ev.args[2] as u32 & AT_EMPTY_PATH != 0 {
        ev.flags |= sys_flags::SECOND_IS_FILE;
    }
    put(&mut ev.str_lens[0], len0 as u32);
    put(&mut ev.str_lens[1], len1 as u32);
    put(&mut ev.str_lens[2], len2 as u32);
    (len0 + len1 + len2) & STR_MASK
}

/// Copies the name of the `struct filename *` at `cmd + off` to `data +
/// at` (at most `cap` bytes with its NUL); its length without the NUL.
#[inline(always)]
fn filename(data: *mut u8, at: usize, cap: usize, cmd: u64, off: u32, flags: &mut u32) -> usize {
    let name = read_ptr(cmd, off).and_then(|f| read_ptr(f, off!(filename_name)));
    let name = match name {
        Ok(name) => name,
        Err(Miss::Absent) => return 0,
        Err(Miss::Fault) => {
            *flags |= sys_flags::UNREADABLE;
            count_error(ProbeError::ReadArg);
            return 0;
        }
    };
    // SAFETY: a masked offset: cap (<= 4 KiB) bytes from it are inside the
    // scratch value.
    let dst = unsafe { data.add(at & STR_MASK) };
    let n = read_kernel_str(
        dst,
        cap,
        name,
        flags,
        sys_flags::UNREADABLE,
        sys_flags::TRUNCATED,
    );
    n as usize & (cap - 1)
}

/// Copies an xattr request's name (str1) and value (str2, its first
/// `XATTR_VALUE_CAP` bytes) to `data + at`: the kernel's copies, made
/// when the request was prepared, which are what it will set (no thread
/// of the caller can change them in between, unlike the caller's memory a
/// setxattr syscall's entry reads). Their lengths; a value longer than
/// the cap is told by `size`.
#[inline(always)]
fn xattr(data: *mut u8, at: usize, cmd: u64, size: u64, flags: &mut u32) -> (usize, usize) {
    let ctx = off!(io_xattr_ctx);
    let name = read_ptr(cmd, plus(ctx, off!(xattr_ctx_kname)));
    let name = match name.and_then(|n| field(n, off!(xattr_name_name))) {
        Ok(name) => name,
        Err(Miss::Absent) => return (0, 0),
        Err(Miss::Fault) => {
            *flags |= sys_flags::UNREADABLE;
            count_error(ProbeError::ReadArg);
            return (0, 0);
        }
    };
    // SAFETY: a masked offset: XATTR_NAME_CAP bytes from it are inside
    // the scratch value.
    let dst = unsafe { data.add(at & STR_MASK) };
    let n = read_kernel_str(dst, XATTR_NAME_CAP, name, flags, sys_flags::UNREADABLE, 0);
    let name_len = n as usize & (XATTR_NAME_CAP - 1);
    let Ok(value) = read_ptr(cmd, plus(ctx, off!(xattr_ctx_kvalue))) else {
        return (name_len, 0);
    };
    let len = copy_len::<XATTR_VALUE_CAP>(size);
    if value == 0 || len == 0 {
        return (name_len, 0);
    }
    // SAFETY: at most XATTR_VALUE_CAP bytes at a masked offset, inside the
    // scratch value.
    let r = unsafe {
        bpf_probe_read_kernel(
            data.add((at + name_len) & STR_MASK).cast(),
            len,
            value as *const _,
        )
    };
    if r < 0 {
        *flags |= sys_flags::UNREADABLE;
        count_error(ProbeError::ReadArg);
        return (name_len, 0);
    }
    (name_len, len as usize)
}

/// Is request `ev` a change of a privileged xattr (`security.*`, ACLs), or
/// one whose name could not be read? Such a change is never dropped by
/// its path, as the xattr syscalls are not: a link gives any file a name
/// under an ignored prefix. Its name is str1, after the path in `data`.
#[inline(always)]
fn privileged_xattr_change(opcode: u8, ev: &SysEvent, data: *const u8) -> bool {
    if !sets_xattr(opcode) {
        return false;
    }
    if ev.str_lens[1] == 0 {
        return true;
    }
    let at = ev.str_lens[0] as usize & STR_MASK;
    // SAFETY: the name copied by `xattr`, at a masked offset: XATTR_NAME_CAP
    // bytes from it are inside the scratch value.
    let name = unsafe { &*data.add(at).cast::<[u8; XATTR_NAME_CAP]>() };
    crate::syscall::file::privileged_xattr(name)
}

/// Copies a connect's address from the caller's memory to `data + at`;
/// its length (at most `SOCKADDR_CAP`).
#[inline(always)]
fn sockaddr(data: *mut u8, at: usize, cmd: u64, flags: &mut u32) -> usize {
    let (Ok(addr), Ok(len)) = (
        read_ptr(cmd, off!(io_connect_addr)),
        read_u32(cmd, off!(io_connect_addr_len)),
    ) else {
        return 0;
    };
    let len = (len as usize).min(SOCKADDR_CAP);
    if addr == 0 || len == 0 {
        return 0;
    }
    // SAFETY: at most SOCKADDR_CAP bytes at a masked offset, inside the
    // scratch value.
    let r = unsafe {
        bpf_probe_read_user(data.add(at & STR_MASK).cast(), len as u32, addr as *const _)
    };
    if r < 0 {
        *flags |= sys_flags::UNREADABLE;
        count_error(ProbeError::ReadArg);
        return 0;
    }
    len
}

// SYS_STR_CAP is a power of two, so `n & (cap - 1)` keeps a length that
// is below the cap.
const _: () = assert!(SYS_STR_CAP.is_power_of_two() && SYS_STR0_CAP.is_power_of_two());
