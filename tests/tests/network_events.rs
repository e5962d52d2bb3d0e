//! Network events from the real kernel: connect (blocking, non-blocking,
//! refused, unix), accept, bind, listen, UDP flows without a connect, and
//! packet, raw and ICMP sockets.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;

use sensor_tests::{Sensor, action, at, pid_of};
use serde_json::Value;

fn by(v: &Value, act: &str, pid: u64) -> bool {
    action(v) == act && pid_of(v) == pid && at(v, "event.category")[0] == "network"
}

/// A local port with nothing listening: bound once, then released.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn connect_to_a_closed_port_reports_the_refusal() {
    let sensor = Sensor::start("");
    let port = closed_port();
    // bash's /dev/tcp: a blocking connect from a process of its own.
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}"))
        .spawn()
        .expect("bash");
    let pid = child.id() as u64;
    assert!(
        !child.wait().expect("wait").success(),
        "nothing listens on {port}"
    );
    // Match on the port: before its own connect, bash's getaddrinfo may try
    // other sockets (nscd's unix socket, say), which fail with ENOENT.
    let ev = sensor.wait_for("refused connect", |v| {
        by(v, "connect", pid) && at(v, "destination.port").as_u64() == Some(port as u64)
    });
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "error.code"), "ECONNREFUSED");
    assert_eq!(at(&ev, "destination.ip"), "127.0.0.1");
    assert_eq!(at(&ev, "destination.port").as_u64(), Some(port as u64));
    assert_eq!(at(&ev, "network.transport"), "tcp");
    assert_eq!(at(&ev, "network.type"), "ipv4");
    assert_eq!(at(&ev, "network.direction"), "egress");
    assert_eq!(at(&ev, "event.type")[0], "connection");
    assert_eq!(at(&ev, "process.name"), "bash");
}

#[test]
fn listen_accept_and_connect_name_both_ends() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut served, peer) = listener.accept().expect("accept");
    drop(client);
    let mut buf = Vec::new();
    served.read_to_end(&mut buf).expect("read");

    let bind = sensor.wait_for("bind", |v| {
        by(v, "bind", me) && at(v, "server.port").as_u64() == Some(port as u64)
    });
    assert_eq!(at(&bind, "server.ip"), "127.0.0.1");
    assert_eq!(at(&bind, "event.outcome"), "success");
    let listen = sensor.wait_for("listen", |v| {
        by(v, "listen", me) && at(v, "server.port").as_u64() == Some(port as u64)
    });
    assert_eq!(
        at(&listen, "sensor.network.backlog").as_u64(),
        Some(128),
        "std's backlog: {listen}"
    );
    let connect = sensor.wait_for("connect", |v| {
        by(v, "connect", me) && at(v, "destination.port").as_u64() == Some(port as u64)
    });
    assert_eq!(at(&connect, "event.outcome"), "success");
    assert_eq!(
        at(&connect, "source.port").as_u64(),
        Some(peer.port() as u64),
        "the kernel-chosen local port"
    );
    let accept = sensor.wait_for("accept", |v| {
        (by(v, "accept4", me) || by(v, "accept", me))
            && at(v, "destination.port").as_u64() == Some(port as u64)
    });
    assert_eq!(at(&accept, "network.direction"), "ingress");
    assert_eq!(at(&accept, "source.ip"), "127.0.0.1");
    assert_eq!(
        at(&accept, "source.port").as_u64(),
        Some(peer.port() as u64),
        "the client's port"
    );
    assert!(
        at(&accept, "sensor.network.accepted_fd")
            .as_i64()
            .is_some_and(|fd| fd >= 0)
    );
}

#[test]
fn non_blocking_connects_report_their_end() {
    let sensor = Sensor::start("");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let closed = closed_port();
    // Perl's non-blocking connect: EINPROGRESS, then the TCP state change.
    let script = format!(
        "use IO::Socket::INET; \
         my $a = IO::Socket::INET->new(PeerAddr => '127.0.0.1:{open}', Blocking => 0); \
         my $b = IO::Socket::INET->new(PeerAddr => '127.0.0.1:{closed}', Blocking => 0); \
         sleep 1;"
    );
    let mut child = Command::new("perl")
        .arg("-e")
        .arg(script)
        .spawn()
        .expect("perl");
    let pid = child.id() as u64;
    assert!(child.wait().expect("wait").success());
    let _ = listener.accept();

    for (port, outcome) in [(open, "success"), (closed, "failure")] {
        let to = |v: &Value| at(v, "destination.port").as_u64() == Some(port as u64);
        let started = sensor.wait_for("non-blocking connect", |v| by(v, "connect", pid) && to(v));
        assert_eq!(at(&started, "event.outcome"), "unknown", "{started}");
        assert_eq!(at(&started, "sensor.network.in_progress"), true);
        let ended = sensor.wait_for("its end", |v| by(v, "connect_completed", pid) && to(v));
        assert_eq!(at(&ended, "event.outcome"), outcome, "{ended}");
        assert_eq!(
            at(&ended, "sensor.network.completes"),
            at(&started, "event.id")
        );
        assert_eq!(
            at(&ended, "process.pid").as_u64(),
            Some(pid),
            "the connecting process, not the softirq's"
        );
        if outcome == "failure" {
            assert_eq!(at(&ended, "error.code"), "ECONNREFUSED");
        }
    }
}

/// A connect whose handshake ends after the syscall returned: its end is
/// reported from the TCP state change (`inet_sock_set_state`, in a
/// softirq), not from the syscall's exit as on plain loopback, where the
/// handshake is over before connect returns. The listener's accept queue
/// (backlog 0, set by `listen` itself: IO::Socket takes `Listen => 0` for
/// its default of 5) is full with a first connection, so the late connect's SYN
/// is dropped; once the first is accepted, its SYN is sent again after
/// about a second, from a timer, and the handshake ends there.
#[test]
fn a_connect_that_ends_after_its_syscall_is_reported_from_the_state_change() {
    let sensor = Sensor::start("");
    let script = "use IO::Socket::INET; \
         my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die; \
         listen($l, 0) or die; \
         my $port = $l->sockport; \
         my $first = IO::Socket::INET->new(PeerAddr => \"127.0.0.1:$port\") or die; \
         my $late = IO::Socket::INET->new(PeerAddr => \"127.0.0.1:$port\", Blocking => 0) or die; \
         print $late->sockport, \"\\n\"; \
         my $a = $l->accept or die; \
         sleep 3;";
    let out = Command::new("perl")
        .arg("-e")
        .arg(script)
        .output()
        .expect("perl");
    assert!(out.status.success(), "perl: {out:?}");
    let late_port: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the late connect's port");
    let from_late = |v: &Value| at(v, "source.port").as_u64() == Some(late_port);
    let started = sensor.wait_for("the late connect", |v| {
        action(v) == "connect" && from_late(v)
    });
    assert_eq!(
        at(&started, "sensor.network.in_progress"),
        true,
        "{started}"
    );
    let ended = sensor.wait_for("its end", |v| {
        action(v) == "connect_completed" && from_late(v)
    });
    assert_eq!(
        at(&ended, "sensor.network.completes"),
        at(&started, "event.id"),
        "{ended}"
    );
    assert_eq!(at(&ended, "event.outcome"), "success", "{ended}");
    assert!(from_late(&ended), "{ended}");
    assert_eq!(
        at(&ended, "process.pid"),
        at(&started, "process.pid"),
        "the connecting process, not the softirq's"
    );
}

#[test]
fn unix_socket_connect_shows_the_path() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let dir = sensor_tests::scratch_dir("sensor-net");
    let path = dir.join("control socket");
    let _listener = UnixListener::bind(&path).expect("bind unix");
    let _client = UnixStream::connect(&path).expect("connect unix");
    let missing = dir.join("missing.sock");
    assert!(UnixStream::connect(&missing).is_err());

    let ev = sensor.wait_for("unix connect", |v| {
        by(v, "connect", me) && at(v, "destination.address").as_str() == path.to_str()
    });
    assert_eq!(at(&ev, "network.type"), "unix");
    assert_eq!(at(&ev, "event.outcome"), "success");
    let ev = sensor.wait_for("unix connect to a missing path", |v| {
        by(v, "connect", me) && at(v, "destination.address").as_str() == missing.to_str()
    });
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "error.code"), "ENOENT");
    let bind = sensor.wait_for("unix bind", |v| {
        by(v, "bind", me) && at(v, "server.address").as_str() == path.to_str()
    });
    assert_eq!(at(&bind, "event.outcome"), "success");
}

#[test]
fn udp_connect_is_reported_with_its_transport() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let socket = std::net::UdpSocket::bind("[::1]:0").expect("bind udp6");
    socket.connect("[::1]:53").expect("udp connect");
    let ev = sensor.wait_for("udp connect", |v| {
        by(v, "connect", me)
            && at(v, "network.transport") == "udp"
            && at(v, "destination.port").as_u64() == Some(53)
    });
    assert_eq!(at(&ev, "destination.ip"), "::1");
    assert_eq!(at(&ev, "network.type"), "ipv6");
    assert_eq!(at(&ev, "event.outcome"), "success");
    assert_eq!(
        at(&ev, "source.port").as_u64(),
        Some(socket.local_addr().expect("addr").port() as u64)
    );
}

#[test]
fn a_failed_accept_names_no_peer() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    // A connect first, so the sensor's per-CPU record has real addresses in
    // it; the failed accept that follows must not inherit them.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = listener.accept().expect("accept");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "nothing waits to be accepted");
    let ev = sensor.wait_for("the failed accept", |v| {
        (by(v, "accept4", me) || by(v, "accept", me)) && at(v, "event.outcome") == "failure"
    });
    assert_eq!(at(&ev, "error.code"), "EAGAIN", "{ev}");
    assert!(
        at(&ev, "source").is_null() && at(&ev, "destination").is_null(),
        "no peer for a failed accept: {ev}"
    );
}

/// A connect whose address sits in a page the sensor's read at the call's
/// entry cannot fault in (the kernel's copy can): where fentry loads, the
/// kernel's copy names the destination; where it is refused (this build
/// machine), the refused connect is still reported, with its outcome.
#[test]
fn a_connect_whose_address_cannot_be_read_at_entry_is_still_reported() {
    unread_address_is_named_by_the_kernels_copy("connect", "destination.address");
}

/// The same for a bind, which the socket's own end cannot name when it
/// failed: only the kernel's copy does.
#[test]
fn a_bind_whose_address_cannot_be_read_at_entry_is_still_reported() {
    unread_address_is_named_by_the_kernels_copy("bind", "server.address");
}

/// `call` (connect or bind) of a unix stream socket to a path in a missing
/// directory (ENOENT), through the actor's `CALL-unread-addr`; `field` is
/// where the event names the address.
fn unread_address_is_named_by_the_kernels_copy(call: &str, field: &str) {
    let sensor = Sensor::start("");
    let fentry = sensor_tests::fentry_loads();
    let dir = sensor_tests::scratch_dir(&format!("sensor-net-unread-{call}"));
    let missing = dir.join("no such dir").join("nobody listens here.sock");
    let subcommand = format!("{call}-unread-addr");
    let out = Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg(&subcommand)
        .arg(dir.join("sockaddr"))
        .arg(&missing)
        .output()
        .expect("run the actor");
    assert!(out.status.success(), "actor: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        libc::ENOENT.to_string(),
        "the {call}'s outcome"
    );
    let ev = sensor.wait_for(call, |v| {
        action(v) == call
            && at(v, "process.name") == "actor"
            && at(v, "process.args")[1] == subcommand.as_str()
    });
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "ENOENT", "{ev}");
    assert_eq!(at(&ev, "network.type"), "unix", "{ev}");
    if fentry {
        assert_eq!(at(&ev, field).as_str(), missing.to_str(), "{ev}");
    } else {
        assert!(at(&ev, field).is_null(), "{ev}");
    }
    // The sensor's read failed: nothing to tell apart from the kernel's.
    assert!(at(&ev, "sensor.network.argument_address").is_null(), "{ev}");
}

/// A send with `MSG_FASTOPEN` on a TCP socket connects it, with no
/// connect call: reported from the socket's state change (CLOSE to
/// SYN_SENT) as a connect `without_connect`, `fast_open`, with its end
/// (accepted, or refused) as for a non-blocking connect. A connect call's
/// connection is reported once, by the call.
#[test]
fn a_fast_open_send_connects_without_a_connect_call_and_is_reported() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let _fast_open = ClientFastOpen::on();
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let closed = closed_port();
    // sendto(…, MSG_FASTOPEN, 127.0.0.1:port) on a new TCP socket; its
    // result or -errno, and the socket.
    let fast_open_send = |port: u16| {
        // SAFETY: plain syscalls on a socket this closure owns; the
        // address is a sockaddr_in on the stack.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let mut to: libc::sockaddr_in = std::mem::zeroed();
            to.sin_family = libc::AF_INET as libc::sa_family_t;
            to.sin_port = port.to_be();
            to.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let data = b"hello";
            let sent = libc::sendto(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_FASTOPEN,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            let result = if sent < 0 {
                -std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize
            } else {
                sent
            };
            (result, socket)
        }
    };
    let (sent, socket) = fast_open_send(open);
    assert_eq!(sent, 5, "the fast open send");
    let (mut accepted, _) = listener.accept().expect("accept");
    let mut got = [0u8; 5];
    accepted.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"hello");
    let local_port = {
        // SAFETY: getsockname into a sockaddr_in of the right size.
        let mut at: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let r = unsafe { libc::getsockname(socket.as_raw_fd(), (&raw mut at).cast(), &mut len) };
        assert_eq!(r, 0, "getsockname");
        u16::from_be(at.sin_port)
    };
    let (refused, _closed_socket) = fast_open_send(closed);
    assert_eq!(refused, -(libc::ECONNREFUSED as isize), "nothing listens");
    // And a connect call, to another listener.
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let called = other.local_addr().expect("addr").port();
    let _stream = TcpStream::connect(("127.0.0.1", called)).expect("connect");

    let to = |v: &Value, port: u16| at(v, "destination.port").as_u64() == Some(port as u64);
    for (port, outcome) in [(open, "success"), (closed, "failure")] {
        let started = sensor.wait_for("the fast open connect", |v| {
            by(v, "connect", me) && to(v, port)
        });
        assert_eq!(at(&started, "event.outcome"), "unknown", "{started}");
        assert_eq!(
            at(&started, "sensor.network.in_progress"),
            true,
            "{started}"
        );
        assert_eq!(
            at(&started, "sensor.network.without_connect"),
            true,
            "{started}"
        );
        assert_eq!(at(&started, "sensor.network.fast_open"), true, "{started}");
        assert!(at(&started, "sensor.network.fd").is_null(), "{started}");
        assert!(at(&started, "sensor.syscall").is_null(), "{started}");
        assert_eq!(at(&started, "destination.ip"), "127.0.0.1", "{started}");
        assert_eq!(at(&started, "network.transport"), "tcp", "{started}");
        assert_eq!(at(&started, "network.direction"), "egress", "{started}");
        let ended = sensor.wait_for("its end", |v| by(v, "connect_completed", me) && to(v, port));
        assert_eq!(at(&ended, "event.outcome"), outcome, "{ended}");
        assert_eq!(
            at(&ended, "sensor.network.completes"),
            at(&started, "event.id")
        );
        if outcome == "success" {
            assert_eq!(at(&ended, "source.port").as_u64(), Some(local_port as u64));
        } else {
            assert_eq!(at(&ended, "error.code"), "ECONNREFUSED", "{ended}");
        }
    }
    let call = sensor.wait_for("the connect call", |v| {
        by(v, "connect", me) && to(v, called)
    });
    assert_eq!(at(&call, "sensor.syscall"), "connect", "{call}");
    assert_eq!(at(&call, "event.outcome"), "success", "{call}");
    assert!(
        at(&call, "sensor.network.without_connect").is_null(),
        "{call}"
    );
    let connects = sensor
        .events()
        .into_iter()
        .filter(|v| action(v) == "connect" && to(v, called))
        .count();
    assert_eq!(connects, 1, "the connect call's connection, reported once");
}

#[test]
fn udp_flows_without_a_connect_are_reported_once_per_socket_and_peer() {
    use std::net::{SocketAddr, UdpSocket};
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    // Receivers, so that no send meets a closed port.
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let receiver6 = UdpSocket::bind("[::1]:0").expect("bind udp6");
    let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sentinel = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = |s: &UdpSocket| s.local_addr().expect("addr");
    let [to, to6, to_other, to_sentinel] = [&receiver, &receiver6, &other, &sentinel].map(addr);

    let unconnected = UdpSocket::bind("0.0.0.0:0").expect("bind");
    for _ in 0..3 {
        unconnected.send_to(b"beacon", to).expect("send");
    }
    unconnected.send_to(b"beacon", to_other).expect("send");
    // Another socket to the first destination: a flow of its own.
    let second = UdpSocket::bind("0.0.0.0:0").expect("bind");
    second.send_to(b"beacon", to).expect("send");
    let unconnected6 = UdpSocket::bind("[::]:0").expect("bind udp6");
    unconnected6.send_to(b"beacon", to6).expect("send udp6");
    // And to an IPv4-mapped address: an IPv4 flow, whichever way.
    let mapped = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped(), to.port()));
    unconnected6
        .send_to(b"beacon", mapped)
        .expect("send mapped");
    // A connected socket's sends: its connect is the event.
    let connected = UdpSocket::bind("127.0.0.1:0").expect("bind");
    connected.connect(to_other).expect("connect");
    connected.send(b"beacon").expect("send");
    // A send the kernel refuses after the hook (broadcast without
    // SO_BROADCAST: EACCES; no route: ENETUNREACH) is still the attempt.
    let refused = UdpSocket::bind("0.0.0.0:0").expect("bind");
    let broadcast: SocketAddr = "255.255.255.255:9".parse().expect("address");
    let error = refused.send_to(b"beacon", broadcast).expect_err("refused");
    assert!(
        matches!(error.raw_os_error(), Some(libc::EACCES | libc::ENETUNREACH)),
        "{error}"
    );
    // The receiving side: each sender is a flow of the receiver's (three
    // datagrams from one, one from each other), and the receiver's answers
    // and their receipt are part of the flows already reported.
    let mut buf = [0u8; 16];
    for _ in 0..5 {
        receiver.recv_from(&mut buf).expect("receive");
    }
    let from_unconnected = SocketAddr::from(([127, 0, 0, 1], addr(&unconnected).port()));
    receiver
        .send_to(b"answer", from_unconnected)
        .expect("answer");
    unconnected.recv_from(&mut buf).expect("the answer");
    let from_unconnected6 = SocketAddr::from(([127, 0, 0, 1], addr(&unconnected6).port()));
    receiver
        .send_to(b"answer", from_unconnected6)
        .expect("answer");
    let (_, mapped_from) = unconnected6.recv_from(&mut buf).expect("the answer");
    assert_eq!(
        mapped_from.ip(),
        mapped.ip(),
        "received from the IPv4-mapped address"
    );
    // A datagram into the connected socket: the sender's flow is reported,
    // the connected socket's receipt is not (its connect named its peer).
    other.send_to(b"answer", addr(&connected)).expect("send");
    connected.recv_from(&mut buf).expect("receive");
    unconnected.send_to(b"last", to_sentinel).expect("send");

    let ours = |v: &Value| by(v, "udp_send", me) || by(v, "udp_receive", me);
    sensor.wait_for("the last datagram", |v| {
        by(v, "udp_send", me)
            && at(v, "destination.port").as_u64() == Some(to_sentinel.port() as u64)
    });
    let events: Vec<Value> = sensor.events().into_iter().filter(ours).collect();
    let port = |s: &UdpSocket| addr(s).port();
    let (send, receive) = ("udp_send", "udp_receive");
    // (action, to, from: ports; how many; the peer's address)
    for (act, dest, from, count, peer) in [
        (send, to.port(), port(&unconnected), 1, to),
        (send, to.port(), port(&second), 1, to),
        (send, to_other.port(), port(&unconnected), 1, to_other),
        (send, to6.port(), port(&unconnected6), 1, to6),
        (send, to.port(), port(&unconnected6), 1, to),
        (
            receive,
            to.port(),
            port(&unconnected6),
            1,
            from_unconnected6,
        ),
        (receive, port(&unconnected6), to.port(), 0, to),
        (send, broadcast.port(), port(&refused), 1, broadcast),
        (send, to_other.port(), port(&connected), 0, to_other),
        (receive, to.port(), port(&unconnected), 1, from_unconnected),
        (receive, to.port(), port(&second), 1, from_unconnected),
        (send, port(&unconnected), to.port(), 0, to),
        (receive, port(&unconnected), to.port(), 0, to),
        (send, port(&connected), to_other.port(), 1, addr(&connected)),
        (receive, port(&connected), to_other.port(), 0, to_other),
    ] {
        let found: Vec<&Value> = events
            .iter()
            .filter(|v| {
                action(v) == act
                    && at(v, "destination.port").as_u64() == Some(dest as u64)
                    && at(v, "source.port").as_u64() == Some(from as u64)
            })
            .collect();
        assert_eq!(
            found.len(),
            count,
            "{act} to port {dest} from port {from}: {found:?}"
        );
        let Some(ev) = found.first() else { continue };
        let (direction, outcome, peer_at) = if act == send {
            ("egress", "unknown", "destination.ip")
        } else {
            ("ingress", "success", "source.ip")
        };
        assert_eq!(
            at(ev, peer_at).as_str(),
            Some(&*peer.ip().to_string()),
            "{ev}"
        );
        assert_eq!(at(ev, "event.outcome"), outcome, "{ev}");
        assert_eq!(at(ev, "network.direction"), direction, "{ev}");
        assert_eq!(at(ev, "event.type")[0], "connection", "{ev}");
        assert_eq!(at(ev, "network.transport"), "udp", "{ev}");
        let family = if peer.is_ipv6() { "ipv6" } else { "ipv4" };
        assert_eq!(at(ev, "network.type"), family, "{ev}");
        assert!(at(ev, "sensor.syscall").is_null(), "{ev}");
        assert!(at(ev, "sensor.network.fd").is_null(), "{ev}");
        assert!(at(ev, "error").is_null(), "{ev}");
    }
    // The connected socket is reported by its connect.
    sensor.wait_for("the udp connect", |v| {
        by(v, "connect", me)
            && at(v, "destination.port").as_u64() == Some(to_other.port() as u64)
            && at(v, "network.transport") == "udp"
    });
}

/// Where this machine mounts the root of the cgroup v2 hierarchy.
fn cgroup2_root() -> std::path::PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mounts
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut fields = left.split_whitespace().skip(3);
            let (root, point) = (fields.next()?, fields.next()?);
            (right.starts_with("cgroup2 ") && root == "/").then(|| point.into())
        })
        .expect("a cgroup2 mount")
}

/// A cgroup of its own below the hierarchy's root, removed when dropped
/// (once the processes in it are gone).
struct OwnCgroup(std::path::PathBuf);

impl OwnCgroup {
    fn new(name: &str) -> OwnCgroup {
        let dir = cgroup2_root().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("mkdir cgroup");
        OwnCgroup(dir)
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        // The sensor in it may take a moment to be reaped.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// A shell that moves itself into `cgroup`, then executes its arguments
/// (the sensor) in a cgroup namespace rooted there, with `unshare_flags`
/// besides, and a mount namespace of their own whose /sys/fs/cgroup is a
/// fresh tmpfs with cgroup2 mounted in it: what a container on cgroup v2
/// gets by default. That mount shows the namespace's root (a subtree) as
/// `/`, and the host's mounts are out of sight.
fn in_cgroup_namespace(cgroup: &OwnCgroup, unshare_flags: &str) -> Vec<String> {
    let mounts = "mount -t tmpfs cgns /sys/fs/cgroup && mkdir /sys/fs/cgroup/unified \
        && mount -t cgroup2 cgns /sys/fs/cgroup/unified";
    let script = format!(
        r#"echo $$ > "$0/cgroup.procs" && exec unshare --cgroup --mount {unshare_flags} sh -c '{mounts} && exec "$@"' sh "$@""#
    );
    vec![
        "sh".into(),
        "-c".into(),
        script,
        cgroup.0.display().to_string(),
    ]
}

/// A sensor in a cgroup namespace of its own (a container's, by default
/// on cgroup v2) attaches the UDP hooks at the hierarchy's root all the
/// same, reached through another process's mount namespace (pid 1's, or
/// here the test's: this machine's pid 1 may not be looked into): a flow
/// of a process outside its cgroup is reported. The filter's cgroup paths
/// start from that root too, as the host shows them.
#[test]
fn in_a_cgroup_namespace_of_its_own_the_udp_hooks_still_see_every_socket() {
    use std::net::UdpSocket;
    let cgroup = OwnCgroup::new("sensor-test-cgns");
    let ignored = OwnCgroup::new("sensor-test-cgns-ignored");
    let wrapper = in_cgroup_namespace(&cgroup, "");
    let host_path = ignored
        .0
        .strip_prefix(cgroup2_root())
        .expect("below the root");
    let sensor = Sensor::start_wrapped(
        &wrapper,
        &format!(
            "[filter]\nignore_cgroups = [\"/{}\"]\n",
            host_path.display()
        ),
    );
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/cgroup")).expect("ns link");
    assert_ne!(
        ns(&sensor.pid().to_string()),
        ns("self"),
        "the sensor is in a cgroup namespace of its own"
    );
    let line = sensor.wait_for_log(
        sensor_common::names::UDP_FLOWS_ON,
        std::time::Duration::from_secs(10),
    );
    assert!(line.contains("'s mount namespace)"), "{line}");
    assert!(
        !line.contains(sensor_common::names::UDP_FLOWS_SUBTREE_ONLY),
        "{line}"
    );
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = receiver.local_addr().expect("addr");
    UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .send_to(b"beacon", to)
        .expect("send");
    let me = std::process::id() as u64;
    sensor.wait_for("the datagram from outside the sensor's cgroup", |v| {
        by(v, "udp_send", me) && at(v, "destination.port").as_u64() == Some(to.port() as u64)
    });
    // bash's /dev/udp connects: from the ignored cgroup, then from here.
    let connect_from = |cgroup: Option<&OwnCgroup>| {
        let procs = cgroup.map_or("/dev/null".into(), |c| c.0.join("cgroup.procs"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec bash -c "echo x > /dev/udp/127.0.0.1/$1""#)
            .arg(procs)
            .arg(to.port().to_string())
            .spawn()
            .expect("sh");
        let pid = child.id() as u64;
        assert!(child.wait().expect("wait").success());
        pid
    };
    let in_ignored = connect_from(Some(&ignored));
    let outside = connect_from(None);
    sensor.wait_for("the connect from outside the ignored cgroup", |v| {
        by(v, "connect", outside)
    });
    assert!(
        !sensor.events().iter().any(|v| by(v, "connect", in_ignored)),
        "the ignored cgroup's connect was reported"
    );
}

/// Where nothing reaches the hierarchy's root (pid 1 is the sensor's own,
/// in a pid namespace of its own, with the same cgroup view), the hooks go
/// on the subtree the sensor has, and the start log says so.
#[test]
fn where_the_cgroup_root_is_out_of_reach_the_udp_hooks_cover_a_subtree_and_say_so() {
    let cgroup = OwnCgroup::new("sensor-test-cgns-pid");
    let wrapper = in_cgroup_namespace(&cgroup, "--pid --fork --kill-child --mount-proc");
    let sensor = Sensor::start_wrapped(&wrapper, "");
    let line = sensor.wait_for_log(
        sensor_common::names::UDP_FLOWS_SUBTREE_ONLY,
        std::time::Duration::from_secs(10),
    );
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("--cgroupns=host"), "{line}");
}

/// Runs `actor ACTION` to success; its pid.
fn actor(action: &str) -> u64 {
    let child = Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg(action)
        .spawn()
        .expect("actor");
    let pid = child.id() as u64;
    let out = child.wait_with_output().expect("actor");
    assert!(out.status.success(), "{action}: {out:?}");
    pid
}

/// The `socket` events of process `pid`, each passed to `check`: their
/// `network.type` and the field `second`, sorted.
fn socket_events<'a>(
    events: &'a [Value],
    pid: u64,
    second: &str,
    check: impl Fn(&Value),
) -> Vec<(&'a str, &'a str)> {
    let mut found: Vec<(&str, &str)> = events
        .iter()
        .filter(|v| by(v, "socket", pid))
        .map(|v| {
            check(v);
            let text = |field| at(v, field).as_str().unwrap_or_default();
            (text("network.type"), text(second))
        })
        .collect();
    found.sort();
    found
}

/// Sockets that see or forge whole packets are reported with what they
/// asked for: packet sockets (a sniffer, a passive backdoor waiting for a
/// magic packet), raw IP sockets and ICMP ("ping") sockets, opened or
/// refused; the sockets every program opens are not.
#[test]
fn packet_raw_and_icmp_sockets_are_reported_and_other_sockets_are_not() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let open = |family: i32, sock_type: i32, protocol: i32| {
        // SAFETY: a plain syscall.
        let fd = unsafe { libc::socket(family, sock_type, protocol) };
        assert!(
            fd >= 0,
            "socket({family}, {sock_type}, {protocol}): {}",
            std::io::Error::last_os_error()
        );
        fd
    };
    let all = (libc::ETH_P_ALL as u16).to_be() as i32;
    // Left out in the kernel: no event.
    let mut unreported = vec![
        open(libc::AF_INET, libc::SOCK_STREAM, 0),
        open(libc::AF_INET, libc::SOCK_DGRAM, 0),
        open(libc::AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_UDP),
        open(libc::AF_UNIX, libc::SOCK_DGRAM, 0),
        // Raw, but netlink: `ip`, systemd and udev open these all day.
        open(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
    ];
    // (fd, network.type, sensor.network.socket_type, network.transport,
    // sensor.network.ethertype)
    let reported = [
        (
            open(libc::AF_PACKET, libc::SOCK_RAW, all),
            "packet",
            "raw",
            None,
            Some(3),
        ),
        (
            open(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0),
            "packet",
            "dgram",
            None,
            Some(0),
        ),
        (
            open(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK,
                libc::IPPROTO_ICMP,
            ),
            "ipv4",
            "raw",
            Some("icmp"),
            None,
        ),
        (
            open(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_RAW),
            "ipv6",
            "raw",
            Some("255"),
            None,
        ),
    ];
    unreported.push(open(libc::AF_INET, libc::SOCK_STREAM, 0));
    // Refused for nobody (no CAP_NET_RAW): still reported, with the errno.
    let nobody_pid = actor("packet-sockets-as-nobody");
    // Permitted in a network namespace whose ping_group_range lets root's
    // group in (not the host's, which may not).
    let ping_pid = actor("ping-sockets-in-netns");
    // The last socket: every earlier one's event is in by then.
    let last = open(libc::AF_PACKET, libc::SOCK_RAW, all);
    sensor.wait_for("the last packet socket", |v| {
        by(v, "socket", me) && at(v, "sensor.network.fd").as_i64() == Some(last as i64)
    });
    let events = sensor.events();
    let ours: Vec<&Value> = events.iter().filter(|v| by(v, "socket", me)).collect();
    for (fd, family, socket_type, transport, ethertype) in reported {
        let found: Vec<&&Value> = ours
            .iter()
            .filter(|v| at(v, "sensor.network.fd").as_i64() == Some(fd as i64))
            .collect();
        assert_eq!(found.len(), 1, "fd {fd}: {found:?}");
        let ev = found[0];
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
        assert_eq!(at(ev, "event.category")[0], "network", "{ev}");
        assert_eq!(at(ev, "sensor.syscall"), "socket", "{ev}");
        assert_eq!(at(ev, "network.type"), family, "{ev}");
        assert_eq!(at(ev, "sensor.network.socket_type"), socket_type, "{ev}");
        assert_eq!(at(ev, "network.transport").as_str(), transport, "{ev}");
        assert_eq!(
            at(ev, "sensor.network.ethertype").as_u64(),
            ethertype,
            "{ev}"
        );
    }
    // One each for the four above and the last.
    assert_eq!(ours.len(), 5, "{ours:?}");
    let refused = socket_events(&events, nobody_pid, "sensor.network.socket_type", |v| {
        assert_eq!(at(v, "event.outcome"), "failure", "{v}");
        assert_eq!(at(v, "error.code"), "EPERM", "{v}");
        assert_eq!(at(v, "process.user.id"), "65534", "{v}");
        assert!(at(v, "sensor.network.fd").is_null(), "{v}");
    });
    assert_eq!(refused, [("ipv4", "raw"), ("packet", "raw")]);
    let ping = socket_events(&events, ping_pid, "network.transport", |v| {
        assert_eq!(at(v, "event.outcome"), "success", "{v}");
        assert_eq!(at(v, "sensor.network.socket_type"), "dgram", "{v}");
    });
    assert_eq!(ping, [("ipv4", "icmp"), ("ipv6", "ipv6-icmp")]);
    for fd in unreported
        .into_iter()
        .chain(reported.map(|r| r.0))
        .chain([last])
    {
        // SAFETY: our own fds, closed once.
        unsafe { libc::close(fd) };
    }
}

/// Turns the client side of TCP Fast Open on (`net.ipv4.tcp_fastopen` bit
/// 0, the kernel's default) for as long as it lives, where it was off.
struct ClientFastOpen(Option<String>);

impl ClientFastOpen {
    const SYSCTL: &str = "/proc/sys/net/ipv4/tcp_fastopen";

    fn on() -> ClientFastOpen {
        let was = std::fs::read_to_string(Self::SYSCTL).expect("read tcp_fastopen");
        let value: u32 = was.trim().parse().expect("a number");
        if value & 1 != 0 {
            return ClientFastOpen(None);
        }
        std::fs::write(Self::SYSCTL, (value | 1).to_string()).expect("write tcp_fastopen");
        ClientFastOpen(Some(was))
    }
}

impl Drop for ClientFastOpen {
    fn drop(&mut self) {
        if let Some(was) = &self.0 {
            let _ = std::fs::write(Self::SYSCTL, was.trim());
        }
    }
}
