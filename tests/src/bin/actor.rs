//! Performs one real action an intruder would, for the integration tests:
//! the syscalls themselves, through libc, so the tests do not depend on
//! tools (strace, insmod, bpftool) or on one architecture's numbers.
//!
//! `actor <action> [args]`; exits 0 when the call did what the test
//! expects (success, or the expected failure), printing what happened.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStringExt;

use sensor_tests::{CloneArgs, file_caps_v2};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let result = match arg(0).as_str() {
        "ptrace-attach" => ptrace_attach(arg(1).parse().unwrap_or_else(|_| usage())),
        "init-module-garbage" => init_module_garbage(),
        "finit-module" => finit_module(&arg(1)),
        "init-module" => init_module(&arg(1)),
        "delete-module" => delete_module(&arg(1)),
        "kexec-file-garbage" => kexec_file_garbage(&arg(1)),
        "kexec-load-as-nobody" => kexec_load_as_nobody(),
        "packet-sockets-as-nobody" => packet_sockets_as_nobody(),
        "ping-sockets-in-netns" => ping_sockets_in_netns(),
        "memfd-exec" => memfd_exec(),
        "mount-tmpfs" => mount_tmpfs(&arg(1)),
        "move-mount-tmpfs" => move_mount_tmpfs(&arg(1)),
        "mount-relative" => mount_relative(&arg(1)),
        "bind-relative" => bind_relative(&arg(1), &arg(2)),
        "move-mount-as-nobody" => move_mount_as_nobody(&arg(1)),
        "mount-setattr-rdonly" => mount_setattr_rdonly(&arg(1)),
        "mount-setattr-as-nobody" => mount_setattr_as_nobody(&arg(1)),
        "bpf-prog-load" => bpf_prog_load(),
        "signal" => signal(
            arg(1).parse().unwrap_or_else(|_| usage()),
            arg(2).parse().unwrap_or_else(|_| usage()),
        ),
        "signal-as-nobody" => signal_as_nobody(
            arg(1).parse().unwrap_or_else(|_| usage()),
            arg(2).parse().unwrap_or_else(|_| usage()),
        ),
        "io-uring-write" => io_uring_write(&arg(1), &arg(2)),
        "io-uring-setcap" => io_uring_setcap(&arg(1)),
        "io-uring-move" => io_uring_move(&arg(1), &arg(2), &arg(3)),
        "fast-open-connect" => {
            fast_open_connect(&arg(1), arg(2).parse().unwrap_or_else(|_| usage()))
        }
        "io-uring-name-then-rename" => io_uring_name_then_rename(
            &arg(1),
            [&arg(2), &arg(3), &arg(4), &arg(5)],
            arg(6).parse().unwrap_or_else(|_| usage()),
        ),
        "io-uring-accept-into-slots" => io_uring_accept_into_slots(),
        "clone3-unread-flags" => clone3_unread_flags(&arg(1)),
        "setns-swapped-fd" => setns_swapped_fd(arg(1).parse().unwrap_or_else(|_| usage())),
        "connect-unread-addr" => unread_addr_call(Call::Connect, &arg(1), &arg(2)),
        "bind-unread-addr" => unread_addr_call(Call::Bind, &arg(1), &arg(2)),
        "removexattr-unread-name" => removexattr_unread_name(&arg(1), &arg(2), &arg(3)),
        "chmod-unread-path" => chmod_unread_path(
            &arg(1),
            &arg(2),
            u32::from_str_radix(&arg(3), 8).unwrap_or_else(|_| usage()),
        ),
        "connect-swapped-addr" => {
            connect_swapped_addr(arg(1).parse().unwrap_or_else(|_| usage()), false)
        }
        "io-uring-connect-swapped-addr" => {
            connect_swapped_addr(arg(1).parse().unwrap_or_else(|_| usage()), true)
        }
        "setcap-rewritten" => setcap_rewritten(&arg(1)),
        "pidfd-getfd-swapped" => pidfd_getfd_swapped(arg(1).parse().unwrap_or_else(|_| usage())),
        _ => usage(),
    };
    match result {
        Ok(what) => println!("{what}"),
        Err(e) => {
            eprintln!("actor: {e}");
            std::process::exit(1);
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: actor ptrace-attach PID | init-module-garbage | finit-module FILE | init-module FILE | delete-module NAME | \
         kexec-file-garbage FILE | kexec-load-as-nobody | packet-sockets-as-nobody | ping-sockets-in-netns | \
         memfd-exec | mount-tmpfs DIR | move-mount-tmpfs DIR | mount-relative DIR | bind-relative SRC DST | move-mount-as-nobody DIR | \
         mount-setattr-rdonly DIR | mount-setattr-as-nobody DIR | bpf-prog-load | signal PID SIGNAL | signal-as-nobody PID SIGNAL | \
         io-uring-write FILE LINE | io-uring-setcap FILE | io-uring-move FROM-DIR NAME INTO-DIR | fast-open-connect IPV4 PORT | \
         io-uring-name-then-rename symlink|rename|rename-into-dir|link OLD NEW FROM TO DELAY-MS | io-uring-accept-into-slots | clone3-unread-flags FILE | setns-swapped-fd COUNT | \
         connect-unread-addr FILE IP:PORT|PATH | bind-unread-addr FILE IP:PORT|PATH | \
         connect-swapped-addr COUNT | io-uring-connect-swapped-addr COUNT | setcap-rewritten FILE | \
         chmod-unread-path FILE PATH OCTAL-MODE | removexattr-unread-name FILE NAME TARGET | \
         pidfd-getfd-swapped COUNT"
    );
    std::process::exit(2)
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn ptrace_attach(pid: i32) -> Result<String, String> {
    // SAFETY: attach and detach on a pid; no memory is passed.
    if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) } != 0 {
        return Err(format!("PTRACE_ATTACH {pid}: {}", errno()));
    }
    let mut status = 0;
    // SAFETY: waits for the tracee's stop.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    Ok(format!("attached to {pid}"))
}

/// A module load attempt with an invalid image: refused by the kernel
/// (ENOEXEC), and that attempt is what the test expects to see reported.
/// init_module of `image` with `params`: its result.
fn init_module_call(image: &[u8], params: &str) -> i64 {
    let params = CString::new(params).expect("no NUL");
    // SAFETY: a valid buffer of its length and a string.
    unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    }
}

fn init_module_garbage() -> Result<String, String> {
    match init_module_call(b"this is not an ELF module", "sensor_test=1") {
        0 => Err("the kernel accepted garbage as a module".into()),
        _ => Ok(format!("init_module refused: {}", errno())),
    }
}

/// Loads the module image in `path` from memory (init_module), as a
/// loader that never leaves the module's file where a tracer could name
/// it: the kernel must accept it.
fn init_module(path: &str) -> Result<String, String> {
    let image = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    match init_module_call(&image, "") {
        0 => Ok(format!("{path}: loaded from memory")),
        _ => Err(format!("init_module of {path}: {}", errno())),
    }
}

fn finit_module(path: &str) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let params = CString::new("").expect("no NUL");
    // SAFETY: a valid fd and string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            params.as_ptr(),
            0,
        )
    };
    match r {
        0 => Err("the kernel loaded the file as a module".into()),
        _ => Ok(format!("finit_module refused: {}", errno())),
    }
}

/// A kexec_file_load of a file that is no kernel: refused (ENOEXEC, or
/// EPERM under lockdown or without signature), the attempt reported.
fn kexec_file_garbage(path: &str) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let cmdline = CString::new("sensor_test=1").expect("no NUL");
    // KEXEC_FILE_NO_INITRAMFS: no initrd fd.
    let flags = 4;
    // SAFETY: a valid fd and string (its length with the NUL, as the
    // kernel wants).
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            -1,
            cmdline.as_bytes_with_nul().len(),
            cmdline.as_ptr(),
            flags,
        )
    };
    match r {
        0 => Err("the kernel loaded the file as a kernel".into()),
        _ => Ok(format!("kexec_file_load refused: {}", errno())),
    }
}

/// kexec_load by nobody: refused with EPERM (CAP_SYS_BOOT), before any
/// segment is read.
fn kexec_load_as_nobody() -> Result<String, String> {
    // SAFETY: plain syscalls; no segments are passed.
    let r = unsafe {
        if libc::setresuid(65534, 65534, 65534) != 0 {
            return Err(format!("setresuid: {}", errno()));
        }
        libc::syscall(libc::SYS_kexec_load, 0, 0, std::ptr::null::<u8>(), 0)
    };
    match (r, errno().raw_os_error()) {
        (0, _) => Err("kexec_load succeeded for nobody".into()),
        (_, Some(libc::EPERM)) => Ok("kexec_load refused: EPERM".into()),
        (_, e) => Err(format!("kexec_load failed otherwise: {e:?}")),
    }
}

/// A packet socket for every frame (`ETH_P_ALL`) and a raw ICMP socket,
/// as nobody: both need CAP_NET_RAW, so both are refused (EPERM).
fn packet_sockets_as_nobody() -> Result<String, String> {
    // SAFETY: plain syscalls.
    unsafe {
        if libc::setresuid(65534, 65534, 65534) != 0 {
            return Err(format!("setresuid: {}", errno()));
        }
    }
    let all = (libc::ETH_P_ALL as u16).to_be() as i32;
    for (family, sock_type, protocol) in [
        (libc::AF_PACKET, libc::SOCK_RAW, all),
        (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
    ] {
        // SAFETY: a plain syscall.
        let fd = unsafe { libc::socket(family, sock_type, protocol) };
        match (fd, errno().raw_os_error()) {
            (0.., _) => {
                return Err(format!(
                    "socket({family}, {sock_type}) succeeded for nobody"
                ));
            }
            (_, Some(libc::EPERM)) => {}
            (_, e) => {
                return Err(format!(
                    "socket({family}, {sock_type}) failed otherwise: {e:?}"
                ));
            }
        }
    }
    Ok("both refused: EPERM".into())
}

/// ICMP datagram ("ping") sockets, IPv4 and IPv6, opened in a network
/// namespace of its own whose `ping_group_range` lets the caller's group
/// in: the host's setting is left alone. Prints both fds.
fn ping_sockets_in_netns() -> Result<String, String> {
    // SAFETY: a plain syscall; this process has one thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("unshare: {}", errno()));
    }
    // /proc/sys/net is the opener's namespace's.
    // SAFETY: a plain syscall.
    let gid = unsafe { libc::getgid() };
    std::fs::write(
        "/proc/sys/net/ipv4/ping_group_range",
        format!("{gid} {gid}"),
    )
    .map_err(|e| format!("ping_group_range: {e}"))?;
    let mut fds = Vec::new();
    for (family, protocol) in [
        (libc::AF_INET, libc::IPPROTO_ICMP),
        (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    ] {
        // SAFETY: a plain syscall.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM, protocol) };
        if fd < 0 {
            return Err(format!("ping socket of family {family}: {}", errno()));
        }
        fds.push(fd.to_string());
    }
    Ok(fds.join(" "))
}

fn delete_module(name: &str) -> Result<String, String> {
    let name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: a valid string.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    match r {
        0 => Err("a module of that name existed and was removed".into()),
        _ => Ok(format!("delete_module refused: {}", errno())),
    }
}

/// Copies /bin/true into a memfd and executes it from there.
fn memfd_exec() -> Result<String, String> {
    let name = CString::new("sensor-payload").expect("no NUL");
    // SAFETY: a valid string; no CLOEXEC, so /proc/self/fd/N survives to exec.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", errno()));
    }
    // SAFETY: a fresh fd we own.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(&std::fs::read("/bin/true").map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let path = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: NULL-terminated arrays of valid strings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(format!("execve from the memfd: {}", errno()))
}

/// A clone3 into a new user and uts namespace whose flags a tracer
/// cannot read at the call's entry: they are in a private map of `file`
/// (written here first) that this process never touches, so the page is
/// in the page cache but not in its page tables. A read that cannot
/// fault a page in (a BPF program's at the syscall's entry) fails; the
/// kernel's own copy faults it in and makes the namespaces. (A second
/// thread rewriting the flags between the two reads does the same by a
/// race.) The new process checks that its uts namespace is not ours.
fn clone3_unread_flags(file: &str) -> Result<String, String> {
    let args = CloneArgs {
        flags: (libc::CLONE_NEWUSER | libc::CLONE_NEWUTS) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: CloneArgs is repr(C) u64s, every byte initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts((&raw const args).cast::<u8>(), size_of::<CloneArgs>())
    };
    let at = unread_copy(file, bytes)?;
    let ours = std::fs::read_link("/proc/self/ns/uts").map_err(|e| e.to_string())?;
    let ours = CString::new(ours.into_os_string().into_vec()).expect("no NUL in a link");
    // The new process passes its namespace links back through a pipe.
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe(2).
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", errno()));
    }
    // SAFETY: clone3 with a valid struct and its size; without a new stack
    // it returns like fork, and the new process only reads two links,
    // writes them to the pipe and leaves.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, at, size_of::<CloneArgs>()) };
    if pid == 0 {
        let mut uts = [0u8; 64];
        let mut user = [0u8; 64];
        // SAFETY: readlinks into local buffers, a write of them, _exit.
        unsafe {
            let n = libc::readlink(c"/proc/self/ns/uts".as_ptr(), uts.as_mut_ptr().cast(), 63);
            let m = libc::readlink(c"/proc/self/ns/user".as_ptr(), user.as_mut_ptr().cast(), 63);
            let same = n > 0 && &uts[..n as usize] == ours.as_bytes();
            if n > 0 && m > 0 {
                uts[n as usize] = b' ';
                libc::write(fds[1], uts.as_ptr().cast(), n as usize + 1);
                libc::write(fds[1], user.as_ptr().cast(), m as usize);
            }
            libc::_exit(i32::from(same));
        }
    }
    // SAFETY: our write end, kept only by the new process now.
    unsafe { libc::close(fds[1]) };
    if pid < 0 {
        return Err(format!("clone3: {}", errno()));
    }
    let mut links = Vec::new();
    // SAFETY: the read end, ours; File closes it.
    std::io::Read::read_to_end(
        &mut unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) },
        &mut links,
    )
    .map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "the new process is not in a uts namespace of its own ({status:#x})"
        ));
    }
    // Its links as the last line, for the test to compare with the event.
    Ok(format!(
        "clone3 made process {pid} in new user and uts namespaces\n{}",
        String::from_utf8_lossy(&links)
    ))
}

/// `bytes` at an address that a tracer's read at a syscall's entry cannot
/// read and the kernel's own copy can: written to `file`, then mapped
/// privately and read-only, its page never touched, so the first read
/// must fault it in, which a BPF read may not do.
fn unread_copy(file: &str, bytes: &[u8]) -> Result<*const libc::c_void, String> {
    std::fs::write(file, bytes).map_err(|e| format!("{file}: {e}"))?;
    let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    // SAFETY: a fresh private read-only map of the file; the mapping
    // outlives the fd.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errno()));
    }
    Ok(at)
}

/// `addr` (`IP:PORT`, or a unix socket path) as a `struct sockaddr`.
fn sockaddr_bytes(addr: &str) -> Result<Vec<u8>, String> {
    Ok(match addr.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) => {
            let mut b = Vec::with_capacity(size_of::<libc::sockaddr_in>());
            b.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.resize(size_of::<libc::sockaddr_in>(), 0);
            b
        }
        Ok(std::net::SocketAddr::V6(a)) => {
            let mut b = Vec::with_capacity(size_of::<libc::sockaddr_in6>());
            b.extend_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&a.ip().octets());
            b.resize(size_of::<libc::sockaddr_in6>(), 0);
            b
        }
        Err(_) => {
            let path = addr.as_bytes();
            if path.len() >= 108 {
                return Err(format!("{addr}: too long for a unix socket"));
            }
            let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
            b.extend_from_slice(path);
            b.push(0);
            b
        }
    })
}

/// The socket calls that take an address.
#[derive(Clone, Copy)]
enum Call {
    Connect,
    Bind,
}

/// A TCP (or unix stream) connect or bind to `addr` (`IP:PORT`, or a
/// path), its address in a page the sensor cannot read at the call's
/// entry (see [`unread_copy`]): only the kernel's own copy of it names the
/// destination or the server. Prints the outcome: `ok` or the errno's
/// number.
fn unread_addr_call(call: Call, file: &str, addr: &str) -> Result<String, String> {
    let bytes = sockaddr_bytes(addr)?;
    let family = i32::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
    let at = unread_copy(file, &bytes)?;
    // SAFETY: a new socket.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", errno()));
    }
    let len = bytes.len() as libc::socklen_t;
    // SAFETY: connect or bind with an address of `len` readable bytes.
    let r = unsafe {
        match call {
            Call::Connect => libc::connect(fd, at.cast(), len),
            Call::Bind => libc::bind(fd, at.cast(), len),
        }
    };
    let outcome = if r == 0 {
        "ok".to_owned()
    } else {
        errno().raw_os_error().unwrap_or(0).to_string()
    };
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    Ok(outcome)
}

/// A chmod of `path` to `mode`, the path's text in a page the sensor
/// cannot read at the call's entry (see [`unread_copy`]): only the file
/// the kernel resolved names it. Prints the outcome: `ok` or the errno's
/// number.
fn chmod_unread_path(file: &str, path: &str, mode: u32) -> Result<String, String> {
    let text = CString::new(path).map_err(|_| format!("{path:?}: a NUL inside"))?;
    let at = unread_copy(file, text.as_bytes_with_nul())?;
    // SAFETY: a NUL-terminated path in a readable (once faulted in) page.
    let r = unsafe { libc::chmod(at.cast(), mode) };
    Ok(if r == 0 {
        "ok".to_owned()
    } else {
        errno().raw_os_error().unwrap_or(0).to_string()
    })
}

/// Removes the xattr `name` of `target`, the name's text in a page the
/// sensor cannot read at the call's entry (see [`unread_copy`], `file`):
/// only the kernel's own copy names it. Prints `ok` or the errno's number.
fn removexattr_unread_name(file: &str, name: &str, target: &str) -> Result<String, String> {
    let name = CString::new(name).map_err(|_| format!("{name:?}: a NUL inside"))?;
    let at = unread_copy(file, name.as_bytes_with_nul())?;
    let target = CString::new(target).map_err(|_| format!("{target:?}: a NUL inside"))?;
    // SAFETY: a path and a NUL-terminated name (readable once faulted in).
    let r = unsafe { libc::removexattr(target.as_ptr(), at.cast()) };
    Ok(if r == 0 {
        "ok".to_owned()
    } else {
        errno().raw_os_error().unwrap_or(0).to_string()
    })
}

/// `COUNT` UDP connects of one socket through one `struct sockaddr_in`
/// that other threads keep rewriting between 127.0.0.1:40001 and
/// 127.0.0.2:40002 (a connected UDP socket needs no listener). Which one
/// the kernel copies, after a tracer's read at the call's entry, is a race.
/// `through_ring`: each connect is an io_uring request, whose address the
/// kernel copies when it prepares the request (6.10+), before the submit
/// tracepoint's read. Prints, for each call that succeeded, the socket's
/// peer after it (`getpeername`), one per line, in order.
fn connect_swapped_addr(count: u32, through_ring: bool) -> Result<String, String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut ring = if through_ring {
        Some(io_uring::IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?)
    } else {
        None
    };
    let word = |addr: &str| -> u64 {
        let b = sockaddr_bytes(addr).expect("an IPv4 address");
        u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"))
    };
    let (a, b) = (word("127.0.0.1:40001"), word("127.0.0.2:40002"));
    // A sockaddr_in as two words: family, port and address in the first,
    // which the other threads swap whole. A copy may still mix the two:
    // the kernel copies user memory a byte at a time.
    let addr = [AtomicU64::new(a), AtomicU64::new(0)];
    // SAFETY: a new socket.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", errno()));
    }
    let stop = AtomicBool::new(false);
    let mut peers = Vec::new();
    // One rewriting thread per CPU, as in `while_swapping`.
    let writers = std::thread::available_parallelism().map_or(2, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    addr[0].store(b, Ordering::Relaxed);
                    addr[0].store(a, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..count {
            let connected = match ring.as_mut() {
                // SAFETY: 16 readable bytes, a sockaddr_in's size.
                None => (unsafe { libc::connect(fd, addr.as_ptr().cast(), 16) }) == 0,
                Some(ring) => {
                    let entry = io_uring::opcode::Connect::new(
                        io_uring::types::Fd(fd),
                        addr.as_ptr().cast(),
                        16,
                    )
                    .build();
                    // SAFETY: the address lives until the completion,
                    // which this waits for.
                    let pushed = unsafe { ring.submission().push(&entry) }.is_ok();
                    pushed
                        && ring.submit_and_wait(1).is_ok()
                        && ring.completion().next().is_some_and(|c| c.result() == 0)
                }
            };
            if !connected {
                continue;
            }
            // SAFETY: an all-zero sockaddr_in is valid.
            let mut peer: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: getpeername into a local of `len` bytes.
            if unsafe { libc::getpeername(fd, (&raw mut peer).cast(), &mut len) } == 0 {
                let ip = std::net::Ipv4Addr::from(u32::from_be(peer.sin_addr.s_addr));
                peers.push(format!("{ip}:{}", u16::from_be(peer.sin_port)));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    Ok(peers.join("\n"))
}

/// A child that sets something up (`prepare`: syscalls only, right after
/// the fork of a process that may have threads), says whether that
/// worked, then waits to be killed, which dropping its holder does.
struct Holder {
    pid: libc::pid_t,
}

impl Holder {
    fn start(prepare: impl FnOnce() -> bool) -> Result<Holder, String> {
        let mut go = [0; 2];
        // SAFETY: a plain pipe.
        if unsafe { libc::pipe(go.as_mut_ptr()) } != 0 {
            return Err(format!("pipe: {}", errno()));
        }
        // SAFETY: the child only makes syscalls, then pauses until killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = prepare();
            // SAFETY: plain syscalls.
            unsafe {
                libc::write(go[1], if ok { b"r" } else { b"f" }.as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        if pid < 0 {
            return Err(format!("fork: {}", errno()));
        }
        let holder = Holder { pid };
        let mut b = 0u8;
        // SAFETY: waits for the child's word; our pipe's ends.
        unsafe {
            libc::read(go[0], (&raw mut b).cast(), 1);
            libc::close(go[0]);
            libc::close(go[1]);
        }
        if b != b'r' {
            return Err("the child's setup failed".into());
        }
        Ok(holder)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: our own child, killed and reaped.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Runs `body` with a new fd number under which other threads keep
/// putting `own` and `other` in turn (dup2), until `body` returns: a file
/// swapped under an fd's number between a tracer's read of the fd at a
/// syscall's entry and the kernel's. One thread per CPU: with a CPU to
/// itself, the caller is rarely interrupted in that short window, and an
/// idle machine then shows no swap at all.
fn while_swapping<T>(own: i32, other: i32, body: impl FnOnce(i32) -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    // SAFETY: a new number for our own fd.
    let swapped = unsafe { libc::dup(own) };
    let stop = AtomicBool::new(false);
    let swappers = std::thread::available_parallelism().map_or(2, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..swappers {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: both are open fds of this process.
                    unsafe {
                        libc::dup2(other, swapped);
                        libc::dup2(own, swapped);
                    }
                }
            });
        }
        let out = body(swapped);
        stop.store(true, Ordering::Relaxed);
        out
    })
}

/// The fd number at which this process and its child of
/// [`pidfd_getfd_swapped`] hold their different files.
const SWAPPED_TARGET_FD: i32 = 100;

/// `COUNT` pidfd_getfd(fd, 100) calls through one fd number under which a
/// second thread keeps swapping two pidfds: this process's own and a
/// child's. Each holds a different file at fd 100 (here /dev/null, in the
/// child /dev/zero), so each file taken tells whose it was. Which pidfd
/// the kernel reads, after a tracer's read at the call's entry, is a race.
/// Prints the child's pid, then for each call that succeeded `own` or
/// `child`, one per line, in order.
fn pidfd_getfd_swapped(count: u32) -> Result<String, String> {
    use std::os::fd::AsRawFd;
    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    // SAFETY: a new number for our own file.
    if unsafe { libc::dup2(null.as_raw_fd(), SWAPPED_TARGET_FD) } < 0 {
        return Err(format!("dup2: {}", errno()));
    }
    // SAFETY: its own /dev/zero at fd 100.
    let holder = Holder::start(|| unsafe {
        let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
        zero >= 0 && libc::dup2(zero, SWAPPED_TARGET_FD) >= 0
    })?;
    // SAFETY: pidfd_open of ourselves and of our child.
    let (own, other) = unsafe {
        (
            libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as i32,
            libc::syscall(libc::SYS_pidfd_open, holder.pid, 0) as i32,
        )
    };
    if own < 0 || other < 0 {
        return Err(format!("pidfd_open: {}", errno()));
    }
    // /dev/zero's device number, to tell the child's file from ours.
    let zero_rdev = std::fs::metadata("/dev/zero")
        .map(|m| std::os::unix::fs::MetadataExt::rdev(&m))
        .map_err(|e| e.to_string())?;
    let mut taken = vec![holder.pid.to_string()];
    while_swapping(own, other, |swapped| {
        for _ in 0..count {
            // SAFETY: a new fd in this process on success, closed below.
            let fd = unsafe {
                libc::syscall(libc::SYS_pidfd_getfd, swapped, SWAPPED_TARGET_FD, 0) as i32
            };
            if fd < 0 {
                continue;
            }
            // SAFETY: an all-zero stat is valid; fstat of our new fd.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let ok = unsafe { libc::fstat(fd, &mut st) } == 0;
            // SAFETY: our own fd.
            unsafe { libc::close(fd) };
            if ok {
                taken.push(
                    if st.st_rdev == zero_rdev {
                        "child"
                    } else {
                        "own"
                    }
                    .to_owned(),
                );
            }
        }
    });
    Ok(taken.join("\n"))
}

/// userfaultfd's ABI (linux/userfaultfd.h), which libc does not carry.
mod uffd {
    pub const API: u64 = 0xAA;
    pub const IOC_API: libc::c_ulong = 0xc018_aa3f;
    pub const IOC_REGISTER: libc::c_ulong = 0xc020_aa00;
    pub const IOC_COPY: libc::c_ulong = 0xc028_aa03;
    pub const REGISTER_MODE_MISSING: u64 = 1;
    pub const EVENT_PAGEFAULT: u8 = 0x12;
    #[repr(C)]
    pub struct Api {
        pub api: u64,
        pub features: u64,
        pub ioctls: u64,
    }
    #[repr(C)]
    pub struct Register {
        pub start: u64,
        pub len: u64,
        pub mode: u64,
        pub ioctls: u64,
    }
    #[repr(C)]
    pub struct Copy {
        pub dst: u64,
        pub src: u64,
        pub len: u64,
        pub mode: u64,
        pub copy: i64,
    }
}

/// Sets `security.capability` on `file` to CAP_SETUID while the sensor's
/// read at the call's entry sees CAP_NET_BIND_SERVICE: deterministically,
/// with no race. The name sits in a page registered with userfaultfd and
/// not there yet, so the entry's read of it fails and the kernel's copy of
/// it, which comes before its copy of the value, waits for this process's
/// handler; the handler rewrites the value (which the entry read already)
/// and only then supplies the name's page. Prints `ok`.
fn setcap_rewritten(file: &str) -> Result<String, String> {
    const PAGE: usize = 4096;
    // CAP_NET_BIND_SERVICE (10), CAP_SETUID (7).
    let decoy = file_caps_v2(1 << 10);
    let real = file_caps_v2(1 << 7);
    // SAFETY: userfaultfd(2) with its documented flags.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) } as i32;
    if fd < 0 {
        return Err(format!("userfaultfd: {}", errno()));
    }
    let mut api = uffd::Api {
        api: uffd::API,
        features: 0,
        ioctls: 0,
    };
    // SAFETY: the API handshake on our fd, with its struct.
    if unsafe { libc::ioctl(fd, uffd::IOC_API, &mut api) } != 0 {
        return Err(format!("UFFDIO_API: {}", errno()));
    }
    // Two pages: the value in the first (there), the name in the second.
    // SAFETY: a new anonymous mapping.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errno()));
    }
    let value = at.cast::<u8>();
    // SAFETY: the first page is ours; writing it makes it present.
    unsafe { std::ptr::copy_nonoverlapping(decoy.as_ptr(), value, decoy.len()) };
    // SAFETY: inside the mapping.
    let name = unsafe { value.add(PAGE) };
    let mut register = uffd::Register {
        start: name as u64,
        len: PAGE as u64,
        mode: uffd::REGISTER_MODE_MISSING,
        ioctls: 0,
    };
    // SAFETY: registers the second page, never touched, with our fd.
    if unsafe { libc::ioctl(fd, uffd::IOC_REGISTER, &mut register) } != 0 {
        return Err(format!("UFFDIO_REGISTER: {}", errno()));
    }
    let mut source = vec![0u8; PAGE];
    source[..b"security.capability".len()].copy_from_slice(b"security.capability");
    let (value_at, name_at) = (value as usize, name as usize);
    let handler = std::thread::spawn(move || -> Result<(), String> {
        let mut msg = [0u8; 32];
        // SAFETY: reads one uffd_msg (32 bytes) from our fd.
        let n = unsafe { libc::read(fd, msg.as_mut_ptr().cast(), msg.len()) };
        if n != 32 || msg[0] != uffd::EVENT_PAGEFAULT {
            return Err(format!(
                "userfaultfd message: {n} bytes, event {:#x}",
                msg[0]
            ));
        }
        // SAFETY: the first page of the mapping, present and ours.
        unsafe { std::ptr::copy_nonoverlapping(real.as_ptr(), value_at as *mut u8, real.len()) };
        let mut copy = uffd::Copy {
            dst: name_at as u64,
            src: source.as_ptr() as u64,
            len: PAGE as u64,
            mode: 0,
            copy: 0,
        };
        // SAFETY: fills the registered page from our buffer.
        if unsafe { libc::ioctl(fd, uffd::IOC_COPY, &mut copy) } != 0 {
            return Err(format!("UFFDIO_COPY: {}", errno()));
        }
        Ok(())
    });
    let path = CString::new(file).map_err(|e| e.to_string())?;
    // SAFETY: setxattr with a path, a name and a value of 20 bytes, all ours.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.cast(), value.cast(), real.len(), 0) };
    let set = if r == 0 { Ok(()) } else { Err(errno()) };
    handler
        .join()
        .map_err(|_| "the handler panicked".to_owned())??;
    set.map_err(|e| format!("setxattr: {e}"))?;
    Ok("ok".into())
}

/// `COUNT` setns(fd, CLONE_NEWNET) calls through one fd number under
/// which a second thread keeps swapping two network namespace files: this
/// process's own and a new one's (a child's that unshared). Which one the
/// kernel reads, after a tracer's read at the call's entry, is a race.
/// Prints, for each call that succeeded, the inode number of the network
/// namespace the calling thread is in after it, one per line, in order.
fn setns_swapped_fd(count: u32) -> Result<String, String> {
    use std::os::fd::AsRawFd;
    let own = std::fs::File::open("/proc/self/ns/net").map_err(|e| e.to_string())?;
    // SAFETY: a syscall in the child.
    let holder = Holder::start(|| unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 })?;
    let other = std::fs::File::open(format!("/proc/{}/ns/net", holder.pid));
    let other = other.map_err(|e| e.to_string())?;
    let (own, other) = (own.as_raw_fd(), other.as_raw_fd());
    let mut entered = Vec::new();
    while_swapping(own, other, |swapped| {
        for _ in 0..count {
            // SAFETY: setns of this thread through an fd of this process.
            if unsafe { libc::setns(swapped, libc::CLONE_NEWNET) } == 0
                && let Ok(now) = std::fs::metadata("/proc/thread-self/ns/net")
            {
                entered.push(std::os::unix::fs::MetadataExt::ino(&now).to_string());
            }
        }
    });
    Ok(entered.join("\n"))
}

fn mount_tmpfs(dir: &str) -> Result<String, String> {
    mount_tmpfs_kept(dir)?;
    let target = CString::new(dir).map_err(|e| e.to_string())?;
    // SAFETY: a valid string.
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        return Err(format!("umount2: {}", errno()));
    }
    Ok(format!("mounted and unmounted tmpfs on {dir}"))
}

/// Mounts a tmpfs (source "sensor-test") on `dir` with mount(2).
fn mount_tmpfs_kept(dir: &str) -> Result<(), String> {
    let (src, target, fstype) = (
        CString::new("sensor-test").expect("no NUL"),
        CString::new(dir).map_err(|e| e.to_string())?,
        CString::new("tmpfs").expect("no NUL"),
    );
    // SAFETY: valid strings; no data.
    if unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(format!("mount: {}", errno()));
    }
    Ok(())
}

/// Loads a two-instruction socket filter named `sensor_test` (r0 = 0; exit).
fn bpf_prog_load() -> Result<String, String> {
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = CString::new("GPL").expect("no NUL");
    // union bpf_attr for BPF_PROG_LOAD, laid out by hand (libc has no
    // definition): prog_type, insn_cnt, insns, license, ..., prog_name at 48.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..59].copy_from_slice(b"sensor_test");
    // SAFETY: attr is a valid bpf_attr of the size passed.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return Err(format!("BPF_PROG_LOAD: {}", errno()));
    }
    // SAFETY: our fd.
    unsafe { libc::close(fd as i32) };
    Ok("loaded a socket filter".into())
}

fn signal(pid: i32, sig: i32) -> Result<String, String> {
    // SAFETY: kill has no memory arguments.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(format!("kill({pid}, {sig}): {}", errno()));
    }
    Ok(format!("sent signal {sig} to {pid}"))
}

/// Drops to nobody, then signals `pid` (a root process): the kernel must
/// refuse it with EPERM.
fn signal_as_nobody(pid: i32, sig: i32) -> Result<String, String> {
    // SAFETY: plain syscalls without memory arguments.
    if unsafe { libc::setresgid(65534, 65534, 65534) } != 0
        || unsafe { libc::setresuid(65534, 65534, 65534) } != 0
    {
        return Err(format!("dropping to nobody: {}", errno()));
    }
    // SAFETY: as above.
    if unsafe { libc::kill(pid, sig) } == 0 {
        return Err(format!("kill({pid}, {sig}) as nobody succeeded"));
    }
    let e = errno();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(format!("kill({pid}, {sig}) as nobody: {e}, not EPERM"));
    }
    Ok(format!("kill({pid}, {sig}) refused: {e}"))
}

// The new mount API (linux/mount.h); libc has the syscall numbers only.
const FSCONFIG_CMD_CREATE: libc::c_long = 6;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_long = 0x4;

/// Mounts a tmpfs on `dir` the new way (fsopen, fsconfig, fsmount,
/// move_mount), then unmounts it.
fn move_mount_tmpfs(dir: &str) -> Result<String, String> {
    let target = CString::new(dir).map_err(|e| e.to_string())?;
    new_tmpfs_moved_to(libc::AT_FDCWD, &target)?;
    // SAFETY: a valid string.
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        return Err(format!("umount2: {}", errno()));
    }
    Ok(format!("mounted (move_mount) and unmounted tmpfs on {dir}"))
}

/// Mount targets the kernel resolves from the cwd or a dirfd, on `dir`:
/// mount(2) and umount2 of its name from its parent as cwd, mount_setattr
/// of an fd on it with an empty path (AT_EMPTY_PATH), and move_mount to
/// its name relative to an fd on its parent.
fn mount_relative(dir: &str) -> Result<String, String> {
    let path = std::path::Path::new(dir);
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n.to_str().ok_or("non-UTF-8 name")?),
        _ => return Err(format!("{dir}: no parent directory")),
    };
    std::env::set_current_dir(parent).map_err(|e| format!("chdir: {e}"))?;
    mount_tmpfs_kept(name)?;
    let (relative, empty) = (
        CString::new(name).expect("no NUL"),
        CString::new("").expect("no NUL"),
    );
    // SAFETY: plain syscalls with valid strings, fds they returned and a
    // valid mount_attr of the size passed.
    unsafe {
        let fd = libc::open(relative.as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
        if fd < 0 {
            return Err(format!("open: {}", errno()));
        }
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_NOSUID,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let set = mount_setattr_at(fd, &empty, libc::AT_EMPTY_PATH, &attr);
        let set_error = errno();
        libc::close(fd);
        if libc::umount2(relative.as_ptr(), 0) != 0 {
            return Err(format!("umount2: {}", errno()));
        }
        if set != 0 {
            return Err(format!("mount_setattr: {set_error}"));
        }
        let parent_fd = libc::open(c".".as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
        if parent_fd < 0 {
            return Err(format!("open .: {}", errno()));
        }
        let moved = new_tmpfs_moved_to(parent_fd, &relative);
        libc::close(parent_fd);
        moved?;
        if libc::umount2(relative.as_ptr(), 0) != 0 {
            return Err(format!("umount2: {}", errno()));
        }
    }
    Ok(format!("mounted tmpfs on {dir} by relative targets"))
}

/// Bind-mounts directory `src`, named relative to its parent (the cwd), on
/// `dst` (absolute), and unmounts it.
fn bind_relative(src: &str, dst: &str) -> Result<String, String> {
    let path = std::path::Path::new(src);
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n.to_str().ok_or("non-UTF-8 name")?),
        _ => return Err(format!("{src}: no parent directory")),
    };
    std::env::set_current_dir(parent).map_err(|e| format!("chdir: {e}"))?;
    let (source, target) = (
        CString::new(name).expect("no NUL"),
        CString::new(dst).map_err(|_| "NUL in the target")?,
    );
    // SAFETY: plain syscalls with valid strings.
    unsafe {
        if libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!("mount --bind: {}", errno()));
        }
        if libc::umount2(target.as_ptr(), 0) != 0 {
            return Err(format!("umount2: {}", errno()));
        }
    }
    Ok(format!("bound {src} on {dst} by a relative source"))
}

/// A new tmpfs (fsopen, fsconfig, fsmount) moved to `to_path` relative to
/// `to_dfd` with move_mount; left mounted.
fn new_tmpfs_moved_to(to_dfd: libc::c_int, to_path: &CString) -> Result<(), String> {
    let (fstype, empty) = (
        CString::new("tmpfs").expect("no NUL"),
        CString::new("").expect("no NUL"),
    );
    // SAFETY: raw syscalls with valid strings and fds they returned.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), 0);
        if fs < 0 {
            return Err(format!("fsopen: {}", errno()));
        }
        if libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0) < 0 {
            return Err(format!("fsconfig: {}", errno()));
        }
        let mnt = libc::syscall(libc::SYS_fsmount, fs, 0, 0);
        if mnt < 0 {
            return Err(format!("fsmount: {}", errno()));
        }
        let moved = libc::syscall(
            libc::SYS_move_mount,
            mnt,
            empty.as_ptr(),
            to_dfd,
            to_path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        );
        let move_error = errno();
        // The mount's fd keeps it busy.
        libc::close(mnt as i32);
        libc::close(fs as i32);
        if moved < 0 {
            return Err(format!("move_mount: {move_error}"));
        }
    }
    Ok(())
}

/// `struct mount_attr` (include/uapi/linux/mount.h), version 0.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// mount_setattr(AT_FDCWD, dir, 0, attr): returns the call's result.
fn mount_setattr(dir: &CString, attr: &MountAttr) -> libc::c_long {
    mount_setattr_at(libc::AT_FDCWD, dir, 0, attr)
}

/// mount_setattr(dfd, path, flags, attr): returns the call's result.
fn mount_setattr_at(
    dfd: libc::c_int,
    path: &CString,
    flags: libc::c_int,
    attr: &MountAttr,
) -> libc::c_long {
    // SAFETY: a valid string and a valid mount_attr of the size passed.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// Mounts a tmpfs on `dir`, makes it read-only and nosuid and clears
/// noexec with mount_setattr, then unmounts it.
fn mount_setattr_rdonly(dir: &str) -> Result<String, String> {
    mount_tmpfs_kept(dir)?;
    let target = CString::new(dir).map_err(|e| e.to_string())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: MOUNT_ATTR_NOEXEC,
        propagation: 0,
        userns_fd: 0,
    };
    let set = mount_setattr(&target, &attr);
    let set_error = errno();
    // SAFETY: a valid string.
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        return Err(format!("umount2: {}", errno()));
    }
    if set != 0 {
        return Err(format!("mount_setattr: {set_error}"));
    }
    Ok(format!(
        "made the tmpfs on {dir} read-only with mount_setattr"
    ))
}

/// As nobody, mount_setattr on `dir` (any mount) must be refused (EPERM).
fn mount_setattr_as_nobody(dir: &str) -> Result<String, String> {
    let target = CString::new(dir).map_err(|e| e.to_string())?;
    // SAFETY: plain syscalls.
    unsafe {
        if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
            return Err(format!("dropping to nobody: {}", errno()));
        }
    }
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    if mount_setattr(&target, &attr) == 0 {
        return Err("mount_setattr as nobody succeeded".into());
    }
    let e = errno();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(format!("mount_setattr as nobody: {e}, not EPERM"));
    }
    Ok(format!("mount_setattr refused: {e}"))
}

/// As nobody, move_mount must be refused (EPERM) before it looks at the fd.
fn move_mount_as_nobody(dir: &str) -> Result<String, String> {
    let (target, empty) = (
        CString::new(dir).map_err(|e| e.to_string())?,
        CString::new("").expect("no NUL"),
    );
    // SAFETY: plain syscalls; valid strings.
    unsafe {
        if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
            return Err(format!("dropping to nobody: {}", errno()));
        }
        if libc::syscall(
            libc::SYS_move_mount,
            0,
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) == 0
        {
            return Err("move_mount as nobody succeeded".into());
        }
    }
    let e = errno();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(format!("move_mount as nobody: {e}, not EPERM"));
    }
    Ok(format!("move_mount refused: {e}"))
}

/// Appends `line` to `path` (created 0644) with an openat and a write
/// submitted through an io_uring ring: no open or write syscall.
/// Gives `path` cap_setuid+ep through an io_uring ring (`IORING_OP_SETXATTR`,
/// 5.19+): the file capability a `setcap` would set, without its syscall.
/// A kernel without the operation is told, not an error: the scenario runs
/// on kernels from before it.
fn io_uring_setcap(path: &str) -> Result<String, String> {
    use io_uring::opcode;
    const CAP_SETUID: u64 = 7;
    let c_path = CString::new(path).map_err(|e| e.to_string())?;
    let Some(mut ring) = ring_with(opcode::SetXattr::CODE)? else {
        return Ok("this kernel's io_uring has no setxattr".to_owned());
    };
    let value = file_caps_v2(1 << CAP_SETUID);
    let name = c"security.capability";
    let entry = opcode::SetXattr::new(
        name.as_ptr(),
        value.as_ptr().cast(),
        c_path.as_ptr(),
        value.len() as u32,
    )
    .build();
    // SAFETY: the buffers the entry names live until its completion, which
    // run_one waits for.
    let result = unsafe { run_one(&mut ring, &entry) }?;
    if result != 0 {
        return Err(format!("setxattr through the ring: errno {}", -result));
    }
    Ok(format!("{path}: cap_setuid+ep through io_uring"))
}

/// A ring whose kernel supports operation `code`; None where it does not
/// (the scenario runs on kernels from before some operations).
fn ring_with(code: u8) -> Result<Option<io_uring::IoUring>, String> {
    let ring = io_uring::IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe: {e}"))?;
    Ok(probe.is_supported(code).then_some(ring))
}

/// Submits `entry` to `ring` and waits for its completion: its result.
///
/// # Safety
/// The buffers `entry` names must live until it completes (this returns
/// after that).
unsafe fn run_one(
    ring: &mut io_uring::IoUring,
    entry: &io_uring::squeue::Entry,
) -> Result<i32, String> {
    // SAFETY: the caller keeps the entry's buffers alive.
    unsafe { ring.submission().push(entry) }.map_err(|e| e.to_string())?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    Ok(ring.completion().next().ok_or("no completion")?.result())
}

/// Moves `name` from directory `from` into directory `into` through a
/// ring, both names relative to a directory fd of their own: coreutils'
/// `mv job /etc/cron.d/` (9.0+), done where no syscall hook sees it. A
/// kernel without the operation (before 5.11) is told, not an error.
fn io_uring_move(from: &str, name: &str, into: &str) -> Result<String, String> {
    use io_uring::{opcode, types};
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (c_from, c_name, c_into) = (c(from)?, c(name)?, c(into)?);
    let Some(mut ring) = ring_with(opcode::RenameAt::CODE)? else {
        return Ok("this kernel's io_uring has no renameat".to_owned());
    };
    let open_dir = |dir: &CString| {
        // SAFETY: a NUL-terminated path; the fd lives until the process exits.
        let fd = unsafe { libc::open(dir.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        if fd < 0 {
            return Err(format!("open {dir:?}: {}", errno()));
        }
        Ok(types::Fd(fd))
    };
    let (from_fd, into_fd) = (open_dir(&c_from)?, open_dir(&c_into)?);
    let entry = opcode::RenameAt::new(from_fd, c_name.as_ptr(), into_fd, c_name.as_ptr()).build();
    // SAFETY: the names the entry points at live until its completion,
    // which run_one waits for.
    let result = unsafe { run_one(&mut ring, &entry) }?;
    if result != 0 {
        return Err(format!("renameat through the ring: errno {}", -result));
    }
    Ok(format!("moved {from}/{name} into {into} through io_uring"))
}

/// Connects to `ip`:`port` with no connect call: a TCP Fast Open send
/// (`sendto` with `MSG_FASTOPEN`, which Linux clients may do by default)
/// of a line, as a reverse shell would open its connection; then reads
/// what the peer sends until it closes (or 5 s pass).
fn fast_open_connect(ip: &str, port: u16) -> Result<String, String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|e| format!("{ip}: {e}"))?;
    // SAFETY: plain syscalls; the address is a sockaddr_in on the stack.
    let stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", errno()));
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let mut to: libc::sockaddr_in = std::mem::zeroed();
        to.sin_family = libc::AF_INET as libc::sa_family_t;
        to.sin_port = port.to_be();
        to.sin_addr.s_addr = u32::from(ip).to_be();
        let line = b"id\n";
        let sent = libc::sendto(
            fd,
            line.as_ptr().cast(),
            line.len(),
            libc::MSG_FASTOPEN,
            (&raw const to).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if sent < 0 {
            return Err(format!("sendto with MSG_FASTOPEN: {}", errno()));
        }
        stream
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let _ = (&stream).read_to_end(&mut got);
    Ok(format!(
        "connected to {ip}:{port} by a fast open send; read {} bytes",
        got.len()
    ))
}

/// Two accepts through a ring into its registered files, whose results
/// are slot indices (0), not fds: a multishot one into allocated slots,
/// and a single-shot one into slot 2. The process's own fd 0 is then a
/// decoy connection, the one a tracer that took a result for an fd would
/// name. Prints the decoy's two ports.
fn io_uring_accept_into_slots() -> Result<String, String> {
    use io_uring::{IoUring, opcode, types};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    let err = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let decoy_listener = TcpListener::bind("127.0.0.1:0").map_err(err("bind"))?;
    let decoy = TcpStream::connect(decoy_listener.local_addr().map_err(err("addr"))?)
        .map_err(err("connect"))?;
    // SAFETY: replaces this process's stdin with the decoy socket.
    if unsafe { libc::dup2(decoy.as_raw_fd(), 0) } != 0 {
        return Err(format!("dup2: {}", errno()));
    }
    let mut ring = IoUring::new(8).map_err(err("io_uring_setup"))?;
    ring.submitter()
        .register_files_sparse(4)
        .map_err(err("register_files_sparse"))?;
    let multishot = TcpListener::bind("127.0.0.1:0").map_err(err("bind"))?;
    let single = TcpListener::bind("127.0.0.1:0").map_err(err("bind"))?;
    let slot = types::DestinationSlot::try_from_slot_target(2).map_err(|s| format!("slot {s}"))?;
    let entries = [
        opcode::AcceptMulti::new(types::Fd(multishot.as_raw_fd()))
            .allocate_file_index(true)
            .build(),
        opcode::Accept::new(
            types::Fd(single.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .file_index(Some(slot))
        .build(),
    ];
    for entry in &entries {
        // SAFETY: no buffers.
        unsafe { ring.submission().push(entry) }.map_err(|e| e.to_string())?;
    }
    ring.submit().map_err(err("io_uring_enter"))?;
    let mut clients = Vec::new();
    for l in [&multishot, &single] {
        let to = l.local_addr().map_err(err("addr"))?;
        clients.push(TcpStream::connect(to).map_err(err("connect"))?);
    }
    ring.submit_and_wait(2).map_err(err("io_uring_enter"))?;
    for c in ring.completion() {
        if c.result() < 0 {
            return Err(format!("accept into a slot: {}", -c.result()));
        }
    }
    let local = decoy.local_addr().map_err(err("addr"))?.port();
    let remote = decoy.peer_addr().map_err(err("addr"))?.port();
    Ok(format!("{local} {remote}"))
}

/// Gives a name through a ring (`op`: symlink `new` to `old`, or rename or
/// hard-link `old` to `new`; `rename-into-dir`: rename `old` to `new`'s
/// last component, relative to a directory fd of the rest), then at once
/// renames `from` to `to` by
/// syscall (a path through that name, for the sensor to follow). With
/// `delay_ms`, the request is linked behind a read of a pipe that is
/// written only after that long: submitted then, done later.
fn io_uring_name_then_rename(
    op: &str,
    [old, new, from, to]: [&str; 4],
    delay_ms: u64,
) -> Result<String, String> {
    use io_uring::{IoUring, opcode, squeue, types};
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (old, new, from, to) = (c(old)?, c(new)?, c(from)?, c(to)?);
    let cwd = types::Fd(libc::AT_FDCWD);
    let mut ring = IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut pipe = [0; 2];
    // SAFETY: a two-fd array, as pipe2 wants.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", errno()));
    }
    let mut byte = [0u8; 1];
    // rename-into-dir's new name, alive until the request completes.
    let new_name;
    let named = match op {
        "symlink" => opcode::SymlinkAt::new(cwd, old.as_ptr(), new.as_ptr()).build(),
        "rename" => opcode::RenameAt::new(cwd, old.as_ptr(), cwd, new.as_ptr()).build(),
        // The new name relative to a directory fd of its directory.
        "rename-into-dir" => {
            let path = new.to_bytes();
            let cut = path
                .iter()
                .rposition(|&b| b == b'/')
                .ok_or("NEW has no '/'")?;
            let dir = CString::new(&path[..cut]).map_err(|e| e.to_string())?;
            // SAFETY: a NUL-terminated path; the fd is left to the exit.
            let dir_fd = unsafe { libc::open(dir.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
            if dir_fd < 0 {
                return Err(format!("open {dir:?}: {}", errno()));
            }
            new_name = CString::new(&path[cut + 1..]).map_err(|e| e.to_string())?;
            opcode::RenameAt::new(cwd, old.as_ptr(), types::Fd(dir_fd), new_name.as_ptr()).build()
        }
        "link" => opcode::LinkAt::new(cwd, old.as_ptr(), cwd, new.as_ptr()).build(),
        _ => usage(),
    }
    .user_data(2);
    let wait = opcode::Read::new(types::Fd(pipe[0]), byte.as_mut_ptr(), 1)
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(1);
    let entries = if delay_ms > 0 {
        vec![wait, named]
    } else {
        vec![named]
    };
    for entry in &entries {
        // SAFETY: the buffers the entries name live until their
        // completions, which this waits for.
        unsafe { ring.submission().push(entry) }.map_err(|e| e.to_string())?;
    }
    ring.submit().map_err(|e| format!("io_uring_enter: {e}"))?;
    if delay_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SAFETY: one byte from a live buffer into the pipe's write end.
        if unsafe { libc::write(pipe[1], b"x".as_ptr().cast(), 1) } != 1 {
            return Err(format!("write to the pipe: {}", errno()));
        }
    }
    ring.submit_and_wait(entries.len())
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let done = ring
        .completion()
        .find(|c| c.user_data() == 2)
        .map(|c| c.result());
    if done != Some(0) {
        return Err(format!("{op} through the ring: {done:?}"));
    }
    // SAFETY: two NUL-terminated paths.
    if unsafe { libc::rename(from.as_ptr(), to.as_ptr()) } != 0 {
        return Err(format!("rename: {}", errno()));
    }
    Ok(format!("renamed {from:?} to {to:?}"))
}

fn io_uring_write(path: &str, line: &str) -> Result<String, String> {
    use io_uring::{IoUring, opcode, types};
    let c_path = CString::new(path).map_err(|e| e.to_string())?;
    let mut ring = IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut run = |entry: io_uring::squeue::Entry| -> Result<i32, String> {
        // SAFETY: the buffers the entry names live until its completion,
        // which this waits for.
        unsafe { ring.submission().push(&entry) }.map_err(|e| e.to_string())?;
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        let cqe = ring.completion().next().ok_or("no completion")?;
        Ok(cqe.result())
    };
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
    let fd = run(
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), c_path.as_ptr())
            .flags(flags)
            .mode(0o644)
            .build(),
    )?;
    if fd < 0 {
        return Err(format!("openat through the ring: errno {}", -fd));
    }
    let data = format!("{line}\n");
    let written = run(opcode::Write::new(types::Fd(fd), data.as_ptr(), data.len() as u32).build())?;
    // SAFETY: the fd the ring opened for us.
    unsafe { libc::close(fd) };
    if written != data.len() as i32 {
        return Err(format!("write through the ring: {written}"));
    }
    Ok(format!("wrote {written} bytes to {path} through io_uring"))
}
