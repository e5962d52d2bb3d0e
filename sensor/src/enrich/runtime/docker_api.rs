//! Docker Engine API `GET /containers/<id>/json` over the daemon's unix
//! socket: for docker containers whose `config.v2.json` is not where the
//! default data root puts it.
//!
//! One blocking request, written by hand rather than with hyper: the
//! pipeline is synchronous (no runtime to drive hyper's client, and the
//! crate builds hyper with its server half only), and a one-shot HTTP/1.0
//! GET whose answer is read to EOF needs neither chunked decoding nor
//! keep-alive. Every step is bounded by [`DEADLINE`] so that a hung daemon
//! stalls the event path for at most that long, once per retry interval.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The whole exchange, connect to last byte: the sensor's default.
pub const DEADLINE: Duration = Duration::from_millis(250);
/// An inspect answer is a few KB; more is not a docker daemon.
const MAX_ANSWER: usize = 1 << 20;

/// The daemon's inspect answer for container `id`, or `None` when the
/// socket is missing, refuses, takes longer than `deadline` in all, or
/// answers anything but 200 JSON.
pub fn inspect(socket_path: &Path, id: &str, deadline: Duration) -> Option<Value> {
    let start = Instant::now();
    // Non-blocking connect: a daemon that stopped accepting has a full
    // backlog, where a blocking connect would wait without a timeout.
    let mut stream = UnixStream::from(connect_nonblocking(socket_path)?);
    stream.set_nonblocking(false).ok()?;
    let left = |start: Instant| {
        deadline
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
    };
    stream.set_write_timeout(Some(left(start)?)).ok()?;
    // The id is 64 hex digits (from the cgroup path): nothing to escape.
    // One write: `write!` on the unbuffered stream would send the pieces
    // of the format one by one.
    let request = format!("GET /containers/{id}/json HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        stream.set_read_timeout(Some(left(start)?)).ok()?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if answer.len() + n <= MAX_ANSWER => answer.extend_from_slice(&buf[..n]),
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    parse_answer(&answer)
}

/// libc directly: std has no non-blocking connect, and nix's socket
/// feature would add crates for these few lines.
fn connect_nonblocking(path: &Path) -> Option<OwnedFd> {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    // Room for the terminating NUL, which the zeroed address provides.
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain syscalls on a descriptor owned from creation on, and
    // an address initialised above and passed with its own size.
    unsafe {
        let raw = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if raw < 0 {
            return None;
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::connect(
            raw,
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        ) != 0
        {
            return None;
        }
        Some(fd)
    }
}

/// The JSON body of a `200` answer.
fn parse_answer(answer: &[u8]) -> Option<Value> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = answer[..split].split(|&b| b == b' ').nth(1)?;
    if status != b"200" {
        return None;
    }
    serde_json::from_slice(&answer[split + 4..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// For daemons that do answer: long enough that a test thread scheduled
    /// late on a loaded machine still answers in time (the sensor's own
    /// 250 ms is for a daemon that hangs).
    const ANSWERED: Duration = Duration::from_secs(30);

    fn socket_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sensor-docker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A daemon that answers one request with `answer` after reading it.
    fn serve(path: &Path, answer: &'static [u8]) -> std::thread::JoinHandle<Vec<u8>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = vec![0u8; 4096];
            let n = s.read(&mut req).unwrap();
            req.truncate(n);
            s.write_all(answer).unwrap();
            req
        })
    }

    #[test]
    fn a_200_answer_is_the_inspect_json() {
        let dir = socket_dir("ok");
        let sock = dir.join("docker.sock");
        let server = serve(
            &sock,
            b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n\r\n{\"Name\":\"/web\",\"Config\":{\"Image\":\"nginx:1\",\"Labels\":{\"a\":\"b\"}}}\n",
        );
        let id = "a".repeat(64);
        let v = inspect(&sock, &id, ANSWERED).expect("answer");
        let info = super::super::from_docker(&v).unwrap();
        assert_eq!(info.name, Some("web".into()));
        assert_eq!(info.image, Some("nginx:1".into()));
        let req = server.join().unwrap();
        assert!(req.starts_with(format!("GET /containers/{id}/json HTTP/1.0\r\n").as_bytes()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_unknown_and_silent_daemons_are_failures() {
        let dir = socket_dir("bad");
        assert_eq!(inspect(&dir.join("none.sock"), "x", ANSWERED), None);
        let sock = dir.join("404.sock");
        let server = serve(
            &sock,
            b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"No such container\"}",
        );
        assert_eq!(inspect(&sock, "x", ANSWERED), None);
        server.join().unwrap();
        // Accepts but never answers: given up on at the deadline.
        let sock = dir.join("silent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let start = Instant::now();
        assert_eq!(inspect(&sock, "x", DEADLINE), None);
        // A check that it gives up at all, not a measure of how fast: a
        // loaded CI machine may run this thread late.
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
        drop(listener);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn answers_are_parsed_defensively() {
        assert_eq!(parse_answer(b""), None);
        assert_eq!(parse_answer(b"HTTP/1.0 200 OK\r\n\r\nnot json"), None);
        assert_eq!(
            parse_answer(b"\xff\xfe 200\r\n\r\n{}"),
            Some(serde_json::json!({}))
        );
    }
}
