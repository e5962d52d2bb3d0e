//! Syslog transports: a unix datagram socket (`/dev/log`), UDP, TCP and
//! TLS. Streams frame each message with RFC 6587 octet counting
//! (`LEN SP MSG`), so a JSON text holding newlines cannot split a message.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::sinks::SyslogAddress;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the collector; made once at start from the config.
#[derive(Clone)]
pub struct Endpoint {
    pub address: SyslogAddress,
    pub tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
}

pub enum Connection {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Endpoint {
    pub async fn connect(&self) -> io::Result<Connection> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }

    async fn connect_inner(&self) -> io::Result<Connection> {
        match &self.address {
            SyslogAddress::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                Ok(Connection::Unix(s))
            }
            SyslogAddress::Udp(addr) => {
                let target = tokio::net::lookup_host(addr.as_str())
                    .await?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"))
                    })?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).await?;
                s.connect(target).await?;
                Ok(Connection::Udp(s))
            }
            SyslogAddress::Tcp(addr) => {
                let s = TcpStream::connect(addr.as_str()).await?;
                s.set_nodelay(true)?;
                Ok(Connection::Tcp(s))
            }
            SyslogAddress::Tls(addr) => {
                let (connector, name) = self.tls.as_ref().expect("tls endpoint has a connector");
                let s = TcpStream::connect(addr.as_str()).await?;
                s.set_nodelay(true)?;
                let s = connector.connect(name.clone(), s).await?;
                Ok(Connection::Tls(Box::new(s)))
            }
        }
    }
}

impl Connection {
    /// Whether the messages of a failed send may have reached the
    /// collector without an error showing (streams only).
    pub fn is_stream(&self) -> bool {
        matches!(self, Connection::Tcp(_) | Connection::Tls(_))
    }

    /// Sends `messages` (unframed). On streams they go out octet-counted in
    /// one write. Returns how many a datagram socket refused as too long:
    /// those are skipped, since resending cannot help and would hold up
    /// every message behind them. An error means the connection is no
    /// longer usable.
    pub async fn send(
        &mut self,
        messages: &[(u64, Vec<u8>)],
        scratch: &mut Vec<u8>,
    ) -> io::Result<u64> {
        match self {
            Connection::Unix(s) => {
                let mut refused = 0;
                for (_, m) in messages {
                    refused += too_long(s.send(m).await)?;
                }
                Ok(refused)
            }
            Connection::Udp(s) => {
                let mut refused = 0;
                for (_, m) in messages {
                    refused += too_long(s.send(m).await)?;
                }
                Ok(refused)
            }
            Connection::Tcp(s) => {
                peer_closed_tcp(s)?;
                frame(messages, scratch);
                s.write_all(scratch).await.map(|()| 0)
            }
            Connection::Tls(s) => {
                peer_closed_tls(s).await?;
                frame(messages, scratch);
                s.write_all(scratch).await?;
                s.flush().await.map(|()| 0)
            }
        }
    }
}

/// 1 for a datagram the socket refused as too long (EMSGSIZE), 0 for one
/// sent; other errors pass.
fn too_long(sent: io::Result<usize>) -> io::Result<u64> {
    match sent {
        Ok(_) => Ok(0),
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Ok(1),
        Err(e) => Err(e),
    }
}

/// RFC 6587 octet counting: `LEN SP MSG` per message.
pub fn frame(messages: &[(u64, Vec<u8>)], out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.clear();
    for (_, m) in messages {
        let _ = write!(out, "{} ", m.len());
        out.extend_from_slice(m);
    }
}

/// A syslog server never sends us data: anything readable on the socket is
/// its close (or reset). Checking before a write catches a collector that
/// went away while we were idle, before its socket swallows a batch.
fn peer_closed_tcp(s: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 64];
    match s.try_read(&mut buf) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "collector closed the connection",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

async fn peer_closed_tls(s: &mut TlsStream<TcpStream>) -> io::Result<()> {
    let mut buf = [0u8; 64];
    // A read that does not complete at once is cancelled; tokio-rustls
    // keeps partial TLS records buffered, so nothing is lost by that.
    match tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await {
        Err(_) => Ok(()),
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "collector closed the connection",
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_counting_prefixes_each_message_with_its_length() {
        let mut out = Vec::new();
        frame(
            &[
                (1, b"<13>1 - - - - - - hi".to_vec()),
                (2, "é".as_bytes().to_vec()),
            ],
            &mut out,
        );
        assert_eq!(out, b"20 <13>1 - - - - - - hi2 \xc3\xa9");
    }
}
