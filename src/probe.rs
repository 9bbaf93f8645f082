//! [`Probe`]: asking a socket, without writing to it, whether its peer has
//! hung up.

use std::io;
use std::net::TcpStream;

/// Writers that can tell, without blocking and without consuming input,
/// whether the peer has hung up.
///
/// A connection started with [`SseConnection::start_socket`](crate::SseConnection::start_socket)
/// asks this in [`check_connection`](crate::SseConnection::check_connection),
/// so a client that closed its end is noticed before anything is written to
/// it. Implemented for [`TcpStream`] and references and boxes of probe-able
/// writers; for a transport of your own (TLS over TCP, say), delegate to the
/// socket below it.
pub trait Probe {
    /// Returns `Ok(true)` if the peer has closed its end of the connection.
    fn peer_hung_up(&self) -> io::Result<bool>;
}

/// Peeks at one byte without blocking: end-of-stream means the peer sent its
/// FIN, a reset means it is gone; a pending byte or nothing to read means it
/// is still there.
///
/// # What the probe cannot see, and what it changes
///
/// std offers no per-call non-blocking peek (`MSG_DONTWAIT`) and no way to
/// read a socket's mode, and this crate uses neither `unsafe` nor `libc`, so:
///
/// - **The socket is left in blocking mode.** The peek switches the socket
///   to non-blocking mode and back to blocking mode, the mode an
///   [`SseConnection`](crate::SseConnection) needs anyway (on a non-blocking
///   socket a full send buffer fails a write with `WouldBlock`, which closes
///   the connection). Use `start_socket` only with a blocking socket.
/// - **Clones share the mode.** The mode belongs to the socket, not to this
///   handle: a read started on a [clone](TcpStream::try_clone) in another
///   thread during those two system calls returns `WouldBlock` at once. A
///   read already blocked when the probe runs is not disturbed. A server
///   that reads the same socket on another thread while streaming should
///   start the stream with [`start`](crate::SseConnection::start) instead
///   and rely on the heartbeat's write to notice a departed client.
///   (Swapping in a very short read timeout instead would leave the mode
///   alone, but it blocks every probe of an idle socket for a kernel tick,
///   one to four milliseconds, which a hub checking thousands of streams on
///   one thread cannot afford, and it widens that race to the whole tick.)
/// - **Unread input hides the FIN.** A peek returns the first pending byte
///   (a pipelined request, say) even when the peer has closed after it; the
///   end is seen only once that input is read. The peer is then reported as
///   still there, and the heartbeat written after the probe finds out.
/// - **A half-close looks like a close.** A peer that shut down only its
///   sending side (`shutdown(Write)`) is indistinguishable, without writing,
///   from one that closed, and is reported gone. `EventSource` and the
///   Datastar client never half-close.
impl Probe for TcpStream {
    fn peer_hung_up(&self) -> io::Result<bool> {
        self.set_nonblocking(true)?;
        let peeked = loop {
            match self.peek(&mut [0u8; 1]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                peeked => break peeked,
            }
        };
        self.set_nonblocking(false)?;
        match peeked {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if is_disconnect(e.kind()) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

impl<T: Probe + ?Sized> Probe for &T {
    fn peer_hung_up(&self) -> io::Result<bool> {
        (**self).peer_hung_up()
    }
}

impl<T: Probe + ?Sized> Probe for &mut T {
    fn peer_hung_up(&self) -> io::Result<bool> {
        (**self).peer_hung_up()
    }
}

impl<T: Probe + ?Sized> Probe for Box<T> {
    fn peer_hung_up(&self) -> io::Result<bool> {
        (**self).peer_hung_up()
    }
}

fn is_disconnect(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}
