//! Listening TCP sockets with `SO_REUSEPORT`, for I/O threads that share one port.
//!
//! Node 20's `net` has no `reusePort`, but `net.Server.listen({ fd })` adopts a listening socket
//! made elsewhere, in any thread. Each I/O thread asks for its own socket bound to the same
//! host:port; the kernel then spreads incoming connections over the sockets of the group (a hash
//! of the 4-tuple), so each thread accepts its own share with no hand-off between threads.
//! Port 0 lets the kernel choose for the first socket; the others bind the port it chose.

use crate::errors::Code;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::mem::ManuallyDrop;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};

/// A refusal, with its code; lib.rs turns it into the JS error (kept free of napi values so
/// the unit tests run without a Node.js process to link against).
#[derive(Debug)]
pub struct Fault {
  pub code: Code,
  pub reason: String,
}

type NativeResult<T> = std::result::Result<T, Fault>;

fn invalid(reason: String) -> Fault {
  Fault { code: Code::InvalidArgument, reason }
}

fn socket_error(reason: String) -> Fault {
  Fault { code: Code::Socket, reason }
}

/// The backlog used when the caller passes 0 (the kernel caps it at `net.core.somaxconn`).
const DEFAULT_BACKLOG: i32 = 511;

/// A listening socket: its descriptor (owned by the caller from now on) and its bound port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
  pub fd: RawFd,
  pub port: u16,
}

/// Parses an IP literal host (`127.0.0.1`, `::1`, `[::1]`, `0.0.0.0`, `::`) and a port.
/// JS numbers arrive as f64: an integer in `0..=max` or a refusal naming the argument.
pub fn whole(name: &str, n: f64, max: u32) -> NativeResult<u32> {
  if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= f64::from(max)) {
    return Err(invalid(format!("{name} must be an integer in 0..={max}, got {n}")));
  }
  Ok(n as u32)
}

pub fn parse_address(host: &str, port: f64) -> NativeResult<SocketAddr> {
  let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
  let ip: IpAddr = bare
    .parse()
    .map_err(|_| invalid(format!("host must be an IPv4 or IPv6 address literal, got {host:?}")))?;
  Ok(SocketAddr::new(ip, whole("port", port, u32::from(u16::MAX))? as u16))
}

/// Creates a nonblocking, close-on-exec TCP socket with `SO_REUSEADDR` and `SO_REUSEPORT`,
/// binds it to `addr` and listens. On any failure the socket is closed before returning.
pub fn listen(addr: SocketAddr, backlog: f64) -> NativeResult<Listener> {
  let backlog = match whole("backlog", backlog, i32::MAX as u32)? {
    0 => DEFAULT_BACKLOG,
    b => b as i32,
  };
  open(addr, Some(backlog))
}

/// Like [`listen`] but only binds: the socket holds the port (others with `SO_REUSEPORT` may
/// bind it too) and, not listening, receives no connections. For servers that open their own
/// sockets, such as uWebSockets.js, which sets `SO_REUSEPORT` only when given a port other
/// than 0: reserve port 0 here, start them on the port returned, then close the reservation.
pub fn reserve(addr: SocketAddr) -> NativeResult<Listener> {
  open(addr, None)
}

fn open(addr: SocketAddr, backlog: Option<i32>) -> NativeResult<Listener> {
  let fail = |what: &str, e: std::io::Error| socket_error(format!("{what} {addr}: {e}"));
  // socket2 opens with SOCK_CLOEXEC on Linux, so children spawned later do not inherit it.
  let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(|e| fail("socket for", e))?;
  socket.set_reuse_address(true).map_err(|e| fail("SO_REUSEADDR on", e))?;
  socket.set_reuse_port(true).map_err(|e| fail("SO_REUSEPORT on", e))?;
  socket.set_nonblocking(true).map_err(|e| fail("O_NONBLOCK on", e))?;
  socket.bind(&SockAddr::from(addr)).map_err(|e| fail("bind", e))?;
  if let Some(backlog) = backlog {
    socket.listen(backlog).map_err(|e| fail("listen", e))?;
  }
  let port = socket
    .local_addr()
    .map_err(|e| fail("getsockname", e))?
    .as_socket()
    .map(|a| a.port())
    .ok_or_else(|| socket_error(format!("getsockname {addr}: not an IP socket")))?;
  Ok(Listener { fd: socket.into_raw_fd(), port })
}

/// Closes a socket made by [`listen`] or [`reserve`] that was never handed to Node (a handed
/// one is closed by its `net.Server`). Refuses any descriptor that is not a socket with
/// `SO_REUSEPORT` and no peer, so a wrong number cannot close a file or a connection libuv is
/// using.
pub fn close(fd: f64) -> NativeResult<()> {
  let fd = whole("fd", fd, i32::MAX as u32)? as RawFd;
  // SAFETY: `from_raw_fd` takes ownership of `fd`; ManuallyDrop keeps it from being closed
  // while we only inspect it. getsockopt/getpeername on a descriptor that is closed or not a
  // socket fail with EBADF/ENOTSOCK and touch nothing.
  let probe = ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd) });
  let reuse_port = probe.reuse_port().map_err(|e| invalid(format!("fd {fd} is not a socket: {e}")))?;
  if !reuse_port || probe.peer_addr().is_ok() {
    return Err(invalid(format!("fd {fd} is not a listening or reserved SO_REUSEPORT socket")));
  }
  // Now known to be one of ours: dropping the owner closes it.
  drop(ManuallyDrop::into_inner(probe));
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::io::{Read, Write};
  use std::net::{TcpListener, TcpStream};
  use std::os::fd::AsRawFd;

  fn adopt(l: Listener) -> TcpListener {
    // SAFETY: `l.fd` is a fresh listening socket from `listen`, owned by nobody else.
    unsafe { TcpListener::from_raw_fd(l.fd) }
  }

  #[test]
  fn port_zero_then_same_port_again() {
    let a = listen(parse_address("127.0.0.1", 0.0).unwrap(), 0.0).unwrap();
    assert!(a.port > 0);
    let b = listen(parse_address("127.0.0.1", f64::from(a.port)).unwrap(), 16.0).unwrap();
    assert_eq!(b.port, a.port);
    let (la, lb) = (adopt(a), adopt(b));
    // Every connection lands on one of the two sockets.
    let mut accepted = 0;
    for _ in 0..8 {
      let mut c = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
      c.write_all(b"x").unwrap();
      std::thread::sleep(std::time::Duration::from_millis(5));
      for l in [&la, &lb] {
        if let Ok((mut s, _)) = l.accept() {
          let mut buf = [0u8; 1];
          s.set_nonblocking(false).unwrap();
          s.read_exact(&mut buf).unwrap();
          accepted += 1;
        }
      }
    }
    assert_eq!(accepted, 8);
  }

  #[test]
  fn ipv6_and_bracketed_hosts() {
    // IPv6 may be disabled on a host; only then is the error accepted.
    match listen(parse_address("[::1]", 0.0).unwrap(), 0.0) {
      Ok(l) => {
        assert!(l.port > 0);
        close(l.fd as f64).unwrap();
      }
      Err(e) => assert!(e.reason.contains("::1"), "{}", e.reason),
    }
  }

  #[test]
  fn a_reservation_holds_the_port_without_taking_connections() {
    let r = reserve(parse_address("127.0.0.1", 0.0).unwrap()).unwrap();
    // Nobody listens yet: a connection is refused, not queued on the reservation.
    assert!(TcpStream::connect(("127.0.0.1", r.port)).is_err());
    let l = listen(parse_address("127.0.0.1", f64::from(r.port)).unwrap(), 0.0).unwrap();
    assert_eq!(l.port, r.port);
    let la = adopt(l);
    let _c = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(la.accept().is_ok());
    close(r.fd as f64).unwrap();
  }

  #[test]
  fn bad_hosts_and_ports_are_invalid() {
    assert!(parse_address("localhost", 0.0).is_err());
    assert!(parse_address("127.0.0.1", 70_000.0).is_err());
    assert!(parse_address("", 0.0).is_err());
  }

  #[test]
  fn close_refuses_non_listeners() {
    assert!(close(-1.0).is_err());
    assert!(close(1e12).is_err());
    let l = listen(parse_address("127.0.0.1", 0.0).unwrap(), 0.0).unwrap();
    let c = TcpStream::connect(("127.0.0.1", l.port)).unwrap();
    let err = close(c.as_raw_fd() as f64).unwrap_err();
    assert!(err.reason.contains("not a listening or reserved"), "{}", err.reason);
    close(l.fd as f64).unwrap();
  }
}
