//! Network syscalls into ECS `source`/`destination`/`server`/`network`.

use sensor_common::SyscallOp;

use super::{Kind, Pipeline, outcome};
use crate::event::{Endpoint, Event, Network, NetworkDetail, SensorFields, Text};
use crate::source::ebpf::decode::{NetOp, NetRecord, SockAddr};

const NETWORK: &[&str] = &["network"];
const CONNECTION_START: &[&str] = &["connection", "start"];
const CONNECTION: &[&str] = &["connection"];
const INFO: &[&str] = &["info"];

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_PACKET: u16 = sensor_common::AF_PACKET;
const EINPROGRESS: i64 = 115;

/// Connects in progress remembered at most; beyond, the oldest are
/// forgotten (their end is still reported, without `completes`).
const CONNECTING_MAX: usize = 4096;

impl Pipeline {
    pub(super) fn net(&mut self, n: NetRecord) -> Event {
        let ticks = self.table.ids.ticks(n.task.start_boottime);
        self.known(&n.task, ticks);
        // `arg` tells apart the sockets a task connected outside connect
        // calls (no fd); 0 for the calls.
        let key = (n.task.tgid, n.fd, n.task.start_boottime, n.arg);
        let given = Given::of(&n.sockaddr, n.kernel_sockaddr.as_deref());
        let mut detail = NetworkDetail {
            fd: (n.fd >= 0 || matches!(n.op, NetOp::Syscall(_))).then_some(n.fd),
            socket_type: socket_type(n.sock_type),
            ..NetworkDetail::default()
        };
        let mut network = network_of(n.family, n.protocol);
        let (mut outcome, error) = outcome(n.ret);
        let (mut source, mut destination, mut server) = (None, None, None);
        let (action, type_) = match n.op {
            NetOp::Syscall(SyscallOp::Connect) => {
                network.direction = Some("egress");
                let peer = n.remote.filter(|_| n.ret == 0 || n.ret == -EINPROGRESS);
                let ends = connect_ends(&given, peer, n.remote, n.local);
                (source, destination) = (ends.source, ends.destination);
                detail.argument_address = ends.argument_address;
                if n.ret == -EINPROGRESS {
                    outcome = "unknown";
                    detail.in_progress = true;
                }
                ("connect", CONNECTION_START)
            }
            NetOp::ConnectUnseen { fast_open } => {
                network.direction = Some("egress");
                destination = n.remote.map(from_ip);
                // The port is picked just after the state change.
                source = n.local.filter(|a| a.port() != 0).map(from_ip);
                outcome = "unknown";
                detail.in_progress = true;
                detail.without_connect = true;
                detail.fast_open = fast_open;
                ("connect", CONNECTION_START)
            }
            NetOp::UdpSend => {
                network.direction = Some("egress");
                destination = n.remote.map(from_ip);
                // Its bound address (often the wildcard) and its port.
                source = n.local.filter(|a| a.port() != 0).map(from_ip);
                // Seen before the datagram is routed: a send that then
                // fails (no route, a firewall) is still the attempt.
                outcome = "unknown";
                ("udp_send", CONNECTION_START)
            }
            NetOp::UdpReceive => {
                network.direction = Some("ingress");
                // The sender to this host, as for an accept.
                (source, destination) = accept_ends(n.local, n.remote);
                ("udp_receive", CONNECTION_START)
            }
            NetOp::ConnectOutcome => {
                network.direction = Some("egress");
                destination = n.remote.map(from_ip);
                // A failed connect has given its local port back.
                source = n.local.filter(|a| a.port() != 0).map(from_ip);
                detail.completes = self.connecting.remove(&key);
                ("connect_completed", CONNECTION)
            }
            NetOp::Syscall(SyscallOp::Accept | SyscallOp::Accept4) => {
                network.direction = Some("ingress");
                (source, destination) = accept_ends(n.local, n.remote);
                if n.ret >= 0 {
                    detail.accepted_fd = Some(n.ret);
                }
                (
                    if matches!(n.op, NetOp::Syscall(SyscallOp::Accept4)) {
                        "accept4"
                    } else {
                        "accept"
                    },
                    CONNECTION_START,
                )
            }
            NetOp::Syscall(SyscallOp::Bind) => {
                // Once bound, the socket's own end (with the port the
                // kernel picked for port 0); else what the caller asked.
                let bound = n.local.filter(|_| n.ret == 0);
                server = bound
                    .map(from_ip)
                    .or_else(|| given.used.as_ref().map(from_sockaddr));
                detail.argument_address = given.swapped(bound);
                ("bind", INFO)
            }
            NetOp::Syscall(SyscallOp::Listen) => {
                server = n.local.map(from_ip);
                detail.backlog = Some(n.arg);
                ("listen", INFO)
            }
            NetOp::Syscall(SyscallOp::Socket) => {
                // Only packet, raw and ICMP sockets come here (the kernel
                // side leaves the others out): what was asked for, and
                // the new socket's fd.
                detail.fd = (n.ret >= 0).then_some(n.ret as i32);
                if n.family == AF_PACKET {
                    detail.ethertype = Some(u16::from_be(n.protocol));
                }
                ("socket", INFO)
            }
            // Decode only produces network ops here.
            NetOp::Syscall(_) => ("unknown", INFO),
        };
        if network.type_.is_none() {
            if let Some(SockAddr::Other(family)) = given.used {
                detail.family = Some(family);
            } else if n.family != 0 {
                detail.family = Some(n.family);
            }
        }
        let mut sensor = SensorFields {
            syscall: match n.op {
                NetOp::Syscall(op) => Some(op.name()),
                NetOp::ConnectOutcome
                | NetOp::ConnectUnseen { .. }
                | NetOp::UdpSend
                | NetOp::UdpReceive => None,
            },
            ..SensorFields::default()
        };
        let argument = detail.argument_address.clone();
        for (field, end) in [
            ("source.address", &source),
            ("destination.address", &destination),
            ("server.address", &server),
            ("sensor.network.argument_address.address", &argument),
        ] {
            if end
                .as_ref()
                .and_then(|e: &Endpoint| e.address.as_ref())
                .is_some_and(Text::is_escaped)
            {
                sensor.escaped.push(field.to_owned());
            }
        }
        sensor.network = Some(detail);
        let kind = Kind {
            category: NETWORK,
            type_,
            action,
            outcome,
        };
        let mut ev = self.process_event(n.boot_ns, &n.task, kind, sensor);
        let connecting = matches!(
            n.op,
            NetOp::Syscall(SyscallOp::Connect) | NetOp::ConnectUnseen { .. }
        );
        if n.ret == -EINPROGRESS && connecting {
            if self.connecting.len() >= CONNECTING_MAX {
                // Rare (thousands of connects pending at once): forget all
                // rather than track age; their ends are still reported.
                self.connecting.clear();
            }
            self.connecting.insert(key, ev.event.id.clone());
        } else {
            ev.error = error;
        }
        ev.source = source;
        ev.destination = destination;
        ev.server = server;
        ev.network = Some(network);
        ev
    }
}

/// What an event of a connect says of its ends (`source`,
/// `destination`), and of the address the caller passed
/// (`argument_address`).
pub(super) struct ConnectEnds {
    pub source: Option<Endpoint>,
    pub destination: Option<Endpoint>,
    pub argument_address: Option<Endpoint>,
}

/// A connect's ends: where the socket went, as it has its peer (`peer`:
/// once connected, or connecting), the kernel's own state; else where the
/// caller asked to go (`given`); the socket's view (`remote`) when the
/// address is not one we decode. Its own end (`local`) once it has a
/// port: a failed connect has given its port back. Shared by the syscall
/// and an io_uring connect's completion.
pub(super) fn connect_ends(
    given: &Given,
    peer: Option<std::net::SocketAddr>,
    remote: Option<std::net::SocketAddr>,
    local: Option<std::net::SocketAddr>,
) -> ConnectEnds {
    ConnectEnds {
        destination: match (peer, &given.used) {
            (Some(peer), _) if !peer.ip().is_unspecified() => Some(from_ip(peer)),
            (_, Some(used)) => Some(from_sockaddr(used)),
            _ => remote.map(from_ip),
        },
        argument_address: given.swapped(peer),
        source: local.filter(|a| a.port() != 0).map(from_ip),
    }
}

/// An accepted connection's `source` (the client, the socket's peer) and
/// `destination` (this host: the socket's own end).
pub(super) fn accept_ends(
    local: Option<std::net::SocketAddr>,
    remote: Option<std::net::SocketAddr>,
) -> (Option<Endpoint>, Option<Endpoint>) {
    (remote.map(from_ip), local.map(from_ip))
}

/// A connect's or bind's address: as the sensor read it from the
/// caller's memory at the call's entry, and as the kernel used it.
pub(super) struct Given {
    /// From the caller's memory at entry.
    argument: Option<SockAddr>,
    /// The kernel's copy where the fentry hook saw it (the address the
    /// call used), else the argument.
    used: Option<SockAddr>,
    /// Whether `used` is the kernel's copy.
    copied: bool,
}

impl Given {
    /// From the address read at entry and the kernel's copy, if seen.
    pub(super) fn of(sockaddr: &[u8], kernel_sockaddr: Option<&[u8]>) -> Given {
        let argument = SockAddr::parse(sockaddr);
        match kernel_sockaddr {
            Some(copy) => Given {
                argument,
                used: SockAddr::parse(copy),
                copied: true,
            },
            None => Given {
                used: argument.clone(),
                argument,
                copied: false,
            },
        }
    }

    /// The argument, where the caller's memory said something else at the
    /// call's entry than the call used: the trace of a thread rewriting
    /// the address under the call (to pass a connection off as one to
    /// elsewhere). Told by the kernel's copy; without it, by `socket_end`
    /// (the socket's own end after the call, where it has one), which the
    /// kernel may have completed from a wildcard (port 0, an unspecified
    /// address).
    fn swapped(&self, socket_end: Option<std::net::SocketAddr>) -> Option<Endpoint> {
        let argument = self.argument.as_ref()?;
        let differs = if self.copied {
            self.used.as_ref() != Some(argument)
        } else {
            match (argument, socket_end) {
                (SockAddr::Ip(asked), Some(end)) => !completes(*asked, end),
                _ => false,
            }
        };
        differs.then(|| from_sockaddr(argument))
    }
}

/// Whether the kernel gave a socket the end `end` for the address `asked`:
/// the same, or with a wildcard in `asked` filled in.
fn completes(asked: std::net::SocketAddr, end: std::net::SocketAddr) -> bool {
    (asked.ip() == end.ip() || asked.ip().is_unspecified())
        && (asked.port() == end.port() || asked.port() == 0)
}

pub(super) fn from_ip(a: std::net::SocketAddr) -> Endpoint {
    Endpoint {
        address: Some(Text(a.ip().to_string().into_bytes())),
        ip: Some(a.ip()),
        port: Some(a.port()),
        domain: None,
    }
}

pub(super) fn from_sockaddr(a: &SockAddr) -> Endpoint {
    match a {
        SockAddr::Ip(ip) => from_ip(*ip),
        SockAddr::Unix(path) => Endpoint {
            address: Some(Text(path.clone())),
            ..Endpoint::default()
        },
        SockAddr::Other(_) => Endpoint::default(),
    }
}

/// ECS `network` of a socket of `family` and `protocol` (its direction
/// left to the caller).
pub(super) fn network_of(family: u16, protocol: u16) -> Network {
    Network {
        transport: transport(family, protocol),
        iana_number: matches!(family, AF_INET | AF_INET6).then(|| protocol.to_string()),
        type_: family_name(family),
        direction: None,
    }
}

fn family_name(family: u16) -> Option<&'static str> {
    match family {
        AF_UNIX => Some("unix"),
        AF_INET => Some("ipv4"),
        AF_INET6 => Some("ipv6"),
        // Not ECS's (an IP version): a packet socket is below IP.
        AF_PACKET => Some("packet"),
        _ => None,
    }
}

fn transport(family: u16, protocol: u16) -> Option<String> {
    if !matches!(family, AF_INET | AF_INET6) {
        return None;
    }
    Some(match protocol {
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        1 => "icmp".to_owned(),
        58 => "ipv6-icmp".to_owned(),
        132 => "sctp".to_owned(),
        other => other.to_string(),
    })
}

fn socket_type(t: u16) -> Option<&'static str> {
    match t {
        1 => Some("stream"),
        2 => Some("dgram"),
        3 => Some("raw"),
        5 => Some("seqpacket"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ebpf::decode::KernelEvent;

    /// Two sockets one task connected with no connect call (no fd), each
    /// paired with its own end by the record's `arg`, whatever the order
    /// their ends come in.
    #[test]
    fn connects_without_a_call_are_paired_with_their_ends_by_socket() {
        use crate::event::{Agent, Host};
        let mut p = Pipeline::new(Host::named("t"), Agent::named("t"), 64, 4, 100);
        // SAFETY: TaskInfo is plain integers and byte arrays.
        let mut task: sensor_common::TaskInfo = unsafe { std::mem::zeroed() };
        // A pid no process on the build machine has: nothing from /proc.
        (task.tgid, task.tid, task.ppid) = (4_200_102, 4_200_102, 1);
        task.start_boottime = 1_000_000_000;
        let record = |op, arg, ret, port: u16| {
            let KernelEvent::Net(connect) = super::super::bench::connect(task) else {
                unreachable!("a network record");
            };
            KernelEvent::Net(NetRecord {
                op,
                fd: -1,
                arg,
                ret,
                sockaddr: Vec::new(),
                kernel_sockaddr: None,
                local: Some(format!("10.0.0.2:{port}").parse().expect("address")),
                ..connect
            })
        };
        let mut json = |ev| serde_json::to_value(p.handle(ev).expect("an event")).expect("json");
        let unseen = NetOp::ConnectUnseen { fast_open: true };
        let first = json(record(unseen, 7, -EINPROGRESS, 0));
        let second = json(record(
            NetOp::ConnectUnseen { fast_open: false },
            9,
            -EINPROGRESS,
            0,
        ));
        for (started, fast_open) in [(&first, true), (&second, false)] {
            assert_eq!(started["event"]["action"], "connect", "{started}");
            assert_eq!(started["event"]["outcome"], "unknown", "{started}");
            assert_eq!(started["destination"]["port"], 443, "{started}");
            assert!(started["source"].is_null(), "no port yet: {started}");
            let network = &started["sensor"]["network"];
            assert_eq!(network["without_connect"], true, "{started}");
            assert_eq!(network["fast_open"].as_bool(), fast_open.then_some(true));
            assert!(network["fd"].is_null(), "{started}");
            assert!(started["sensor"]["syscall"].is_null(), "{started}");
        }
        let second_end = json(record(NetOp::ConnectOutcome, 9, 0, 40001));
        let first_end = json(record(NetOp::ConnectOutcome, 7, -111, 0));
        assert_eq!(
            second_end["sensor"]["network"]["completes"],
            second["event"]["id"]
        );
        assert_eq!(second_end["source"]["port"], 40001);
        assert_eq!(
            first_end["sensor"]["network"]["completes"],
            first["event"]["id"]
        );
        assert_eq!(first_end["error"]["code"], "ECONNREFUSED");
    }

    /// The first datagram of a UDP flow, either way: the peer, this host's
    /// end, UDP, no fd and no syscall named; a send has no result (seen
    /// before it is routed), a receive has succeeded.
    #[test]
    fn a_udp_flow_names_its_peer_and_its_direction() {
        use crate::event::{Agent, Host};
        let mut p = Pipeline::new(Host::named("t"), Agent::named("t"), 64, 4, 100);
        // SAFETY: TaskInfo is plain integers and byte arrays.
        let mut task: sensor_common::TaskInfo = unsafe { std::mem::zeroed() };
        // A pid no process on the build machine has: nothing from /proc.
        (task.tgid, task.tid, task.ppid) = (4_200_103, 4_200_103, 1);
        let KernelEvent::Net(connect) = super::super::bench::connect(task) else {
            unreachable!("a network record");
        };
        for (op, action, direction, outcome, peer_at, ours_at) in [
            (
                NetOp::UdpSend,
                "udp_send",
                "egress",
                "unknown",
                "destination",
                "source",
            ),
            (
                NetOp::UdpReceive,
                "udp_receive",
                "ingress",
                "success",
                "source",
                "destination",
            ),
        ] {
            let datagram = KernelEvent::Net(NetRecord {
                op,
                fd: -1,
                ret: 0,
                protocol: 17,
                sock_type: 2,
                sockaddr: Vec::new(),
                kernel_sockaddr: None,
                local: Some("0.0.0.0:40002".parse().expect("address")),
                remote: Some("192.0.2.53:53".parse().expect("address")),
                ..connect.clone()
            });
            let ev = serde_json::to_value(p.handle(datagram).expect("an event")).expect("json");
            assert_eq!(ev["event"]["action"], action, "{ev}");
            assert_eq!(ev["event"]["outcome"], outcome, "{ev}");
            assert_eq!(ev["event"]["type"][0], "connection", "{ev}");
            assert_eq!(ev[peer_at]["ip"], "192.0.2.53", "{ev}");
            assert_eq!(ev[peer_at]["port"], 53, "{ev}");
            assert_eq!(ev[ours_at]["port"], 40002, "{ev}");
            assert_eq!(ev["network"]["transport"], "udp", "{ev}");
            assert_eq!(ev["network"]["direction"], direction, "{ev}");
            assert!(ev["sensor"]["network"]["fd"].is_null(), "{ev}");
            assert!(ev["sensor"]["syscall"].is_null(), "{ev}");
            assert!(ev["error"].is_null(), "{ev}");
        }
    }

    fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = 2u16.to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.resize(16, 0);
        b
    }

    fn given(argument: Vec<u8>, kernel: Option<Vec<u8>>) -> Given {
        Given::of(&argument, kernel.as_deref())
    }

    #[test]
    fn the_kernels_copy_tells_a_rewritten_address() {
        let asked = sockaddr_in([10, 0, 0, 1], 443);
        let used = sockaddr_in([192, 0, 2, 9], 4444);
        let g = given(asked.clone(), Some(used.clone()));
        assert_eq!(g.used, SockAddr::parse(&used));
        let shown = g.swapped(None).expect("rewritten");
        assert_eq!(shown.ip, Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(shown.port, Some(443));
        // The same address twice: nothing to tell, whatever the socket says.
        let g = given(asked.clone(), Some(asked));
        assert_eq!(g.swapped(Some("127.0.0.1:1".parse().expect("end"))), None);
        // Unreadable at entry: nothing to compare.
        assert_eq!(given(Vec::new(), Some(used)).swapped(None), None);
    }

    #[test]
    fn without_the_kernels_copy_the_socket_end_tells_it_wildcards_aside() {
        let g = given(sockaddr_in([10, 0, 0, 1], 443), None);
        assert_eq!(g.swapped(Some("10.0.0.1:443".parse().expect("end"))), None);
        assert!(
            g.swapped(Some("192.0.2.9:443".parse().expect("end")))
                .is_some()
        );
        assert!(
            g.swapped(Some("10.0.0.1:4444".parse().expect("end")))
                .is_some()
        );
        // No end to compare with (a failed call): nothing told.
        assert_eq!(g.swapped(None), None);
        // connect to 0.0.0.0 goes to loopback; bind to port 0 gets a port.
        let g = given(sockaddr_in([0, 0, 0, 0], 0), None);
        assert_eq!(
            g.swapped(Some("127.0.0.1:5000".parse().expect("end"))),
            None
        );
    }
}
