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
const EINPROGRESS: i64 = 115;

/// Connects in progress remembered at most; beyond, the oldest are
/// forgotten (their end is still reported, without `completes`).
const CONNECTING_MAX: usize = 4096;

impl Pipeline {
    pub(super) fn net(&mut self, n: NetRecord) -> Event {
        let ticks = self.table.ids.ticks(n.task.start_boottime);
        self.known(&n.task, ticks);
        let key = (n.task.tgid, n.fd, n.task.start_boottime);
        let requested = SockAddr::parse(&n.sockaddr);
        let mut detail = NetworkDetail {
            fd: n.fd,
            socket_type: socket_type(n.sock_type),
            ..NetworkDetail::default()
        };
        let mut network = Network {
            transport: transport(n.family, n.protocol),
            iana_number: matches!(n.family, AF_INET | AF_INET6).then(|| n.protocol.to_string()),
            type_: family_name(n.family),
            direction: None,
        };
        let (mut outcome, error) = outcome(n.ret);
        let (mut source, mut destination, mut server) = (None, None, None);
        let (action, type_) = match n.op {
            NetOp::Syscall(SyscallOp::Connect) => {
                network.direction = Some("egress");
                // Where the caller asked to go; the socket's own view when
                // the address is not one we decode.
                destination = requested
                    .as_ref()
                    .map(from_sockaddr)
                    .or_else(|| n.remote.map(from_ip));
                source = n.local.filter(|a| a.port() != 0).map(from_ip);
                if n.ret == -EINPROGRESS {
                    outcome = "unknown";
                    detail.in_progress = true;
                }
                ("connect", CONNECTION_START)
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
                // The client connected to us.
                source = n.remote.map(from_ip);
                destination = n.local.map(from_ip);
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
                server = requested.as_ref().map(from_sockaddr);
                // The port the kernel picked for port 0.
                if let (Some(s), Some(local)) = (server.as_mut(), n.local) {
                    if n.ret == 0 && s.port == Some(0) {
                        s.port = Some(local.port());
                    }
                }
                ("bind", INFO)
            }
            NetOp::Syscall(SyscallOp::Listen) => {
                server = n.local.map(from_ip);
                detail.backlog = Some(n.arg);
                ("listen", INFO)
            }
            // Decode only produces network ops here.
            NetOp::Syscall(_) => ("unknown", INFO),
        };
        if network.type_.is_none() {
            if let Some(SockAddr::Other(family)) = requested {
                detail.family = Some(family);
            } else if n.family != 0 {
                detail.family = Some(n.family);
            }
        }
        let mut sensor = SensorFields {
            syscall: match n.op {
                NetOp::Syscall(op) => Some(op.name()),
                NetOp::ConnectOutcome => None,
            },
            ..SensorFields::default()
        };
        for (field, end) in [
            ("source.address", &source),
            ("destination.address", &destination),
            ("server.address", &server),
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
        if n.ret == -EINPROGRESS && matches!(n.op, NetOp::Syscall(SyscallOp::Connect)) {
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

fn from_ip(a: std::net::SocketAddr) -> Endpoint {
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

fn family_name(family: u16) -> Option<&'static str> {
    match family {
        AF_UNIX => Some("unix"),
        AF_INET => Some("ipv4"),
        AF_INET6 => Some("ipv6"),
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
