//! Which connections get an association slot.
//!
//! A TCP connection costs nothing to open, and an association slot is what
//! every real sender needs. So a connection takes a slot only once its
//! A-ASSOCIATE-RQ has arrived whole; until then it is *opening*, and an
//! opening connection:
//!
//! - has the association request timer (ARTIM, PS3.8 §9.1.5) to send its
//!   request, and is closed when it runs out;
//! - is one of at most `max_opening_per_address` from its address and
//!   `max_opening` in all: over either limit, the *oldest* opening connection
//!   is closed, not the new one, so a real sender (whose request follows its
//!   connection within milliseconds) gets through a flood of idle sockets
//!   from its own address or from everywhere.
//!
//! A first PDU that is not an A-ASSOCIATE-RQ, or declares more than
//! [`MAX_REQUEST_LENGTH`] bytes, is answered with A-ABORT at once.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Largest A-ASSOCIATE-RQ waited for. A request proposing all 128
/// presentation contexts with three transfer syntaxes each is about 25 KB.
pub(crate) const MAX_REQUEST_LENGTH: u32 = 64 * 1024;

/// The opening connections, oldest first.
pub(crate) struct Admission {
    max_opening: usize,
    max_per_address: usize,
    state: Mutex<Opening>,
}

#[derive(Default)]
struct Opening {
    next_id: u64,
    /// id → (address, how to close it). Ids grow, so the first is the oldest.
    connections: BTreeMap<u64, (IpAddr, Arc<Notify>)>,
    per_address: HashMap<IpAddr, usize>,
    /// Connections closed to make room since the last warning, which is
    /// logged at most every 10 s (a flood must not flood the log too).
    evicted_since_warning: u64,
    last_warning: Option<std::time::Instant>,
}

/// An opening connection's place; it leaves when dropped.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    /// Notified when a newer connection needs the place.
    pub(crate) evicted: Arc<Notify>,
}

impl Admission {
    pub(crate) fn new(max_opening: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission { max_opening: max_opening.max(1), max_per_address: max_per_address.max(1), state: Mutex::default() })
    }

    /// Admits a new connection from `address`, closing the oldest opening
    /// connection from that address (or from anywhere) to make room.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Ticket {
        let mut state = self.state.lock().expect("admission lock");
        if state.per_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            let oldest = state.connections.iter().find(|(_, (a, _))| *a == address).map(|(&id, _)| id);
            if let Some(id) = oldest {
                state.evict(id, "its address has too many connections opening");
            }
        }
        if state.connections.len() >= self.max_opening
            && let Some(&id) = state.connections.keys().next()
        {
            state.evict(id, "too many connections are opening");
        }
        let id = state.next_id;
        state.next_id += 1;
        let evicted = Arc::new(Notify::new());
        state.connections.insert(id, (address, evicted.clone()));
        *state.per_address.entry(address).or_default() += 1;
        Ticket { admission: self.clone(), id, evicted }
    }

    /// Connections opening now.
    #[cfg(test)]
    pub(crate) fn opening(&self) -> usize {
        self.state.lock().expect("admission lock").connections.len()
    }
}

impl Opening {
    fn evict(&mut self, id: u64, why: &str) {
        if let Some((address, notify)) = self.remove(id) {
            tracing::debug!(peer = %address, why, "closing the oldest connection that has not sent an association request");
            notify.notify_one();
            self.evicted_since_warning += 1;
            if self.last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                tracing::warn!(
                    closed = self.evicted_since_warning,
                    last_peer = %address,
                    why,
                    "closing idle connections that sent no association request, to make room for new ones"
                );
                self.evicted_since_warning = 0;
                self.last_warning = Some(std::time::Instant::now());
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<(IpAddr, Arc<Notify>)> {
        let (address, notify) = self.connections.remove(&id)?;
        if let Some(count) = self.per_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
        Some((address, notify))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.state.lock().expect("admission lock").remove(self.id);
    }
}

/// How a connection's first PDU turned out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FirstPdu {
    /// A whole A-ASSOCIATE-RQ is waiting in the socket, unread.
    Request,
    /// The peer sent something else: say why, then abort.
    NotARequest(String),
    /// The peer closed the connection first.
    Closed,
    /// ARTIM ran out, or a newer connection needed the place.
    TimedOut,
}

/// Waits, without consuming anything, until the socket holds a whole
/// A-ASSOCIATE-RQ, for at most `artim`.
pub(crate) async fn first_pdu(socket: &TcpStream, artim: Duration, evicted: &Notify) -> FirstPdu {
    let wait = async {
        let mut header = [0u8; 6];
        let mut buffer = Vec::new();
        loop {
            let n = match socket.peek(&mut header).await {
                Ok(0) | Err(_) => return FirstPdu::Closed,
                Ok(n) => n,
            };
            if n == 6 {
                if header[0] != 0x01 {
                    return FirstPdu::NotARequest(format!("first PDU is of type {:#04x}, not an A-ASSOCIATE-RQ (0x01)", header[0]));
                }
                let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
                if length > MAX_REQUEST_LENGTH {
                    return FirstPdu::NotARequest(format!(
                        "A-ASSOCIATE-RQ declares {length} bytes; at most {MAX_REQUEST_LENGTH} are accepted"
                    ));
                }
                buffer.resize(6 + length as usize, 0);
                match socket.peek(&mut buffer).await {
                    Ok(0) | Err(_) => return FirstPdu::Closed,
                    Ok(n) if n == buffer.len() => return FirstPdu::Request,
                    Ok(_) => {}
                }
            }
            // Part of the request is here: peek returns at once while the
            // rest travels, so look again shortly (not so often that many
            // half-sent requests cost much copying).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within(artim, evicted, wait).await
}

/// For the TLS port: waits, without consuming anything, until the socket
/// holds a TLS record header of a handshake (0x16, version 3.x); the
/// handshake and the A-ASSOCIATE-RQ then have what is left of ARTIM, still
/// as an opening connection (`association::run_tls`).
pub(crate) async fn first_tls_record(socket: &TcpStream, artim: Duration, evicted: &Notify) -> FirstPdu {
    let wait = async {
        let mut header = [0u8; 3];
        loop {
            match socket.peek(&mut header).await {
                Ok(0) | Err(_) => return FirstPdu::Closed,
                Ok(3) if header[0] == 0x16 && header[1] == 0x03 => return FirstPdu::Request,
                Ok(3) => return FirstPdu::NotARequest(format!("first bytes {header:02x?} are not a TLS handshake")),
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    within(artim, evicted, wait).await
}

/// `wait`, unless ARTIM runs out or a newer connection needs the place.
async fn within(artim: Duration, evicted: &Notify, wait: impl std::future::Future<Output = FirstPdu>) -> FirstPdu {
    tokio::select! {
        outcome = tokio::time::timeout(artim, wait) => outcome.unwrap_or(FirstPdu::TimedOut),
        () = evicted.notified() => FirstPdu::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    /// Over a limit, the oldest opening connection is told to close and
    /// the newcomer is admitted.
    #[tokio::test]
    async fn the_oldest_opening_connection_makes_room() {
        let admission = Admission::new(4, 2);
        let first = admission.admit(address(1));
        let second = admission.admit(address(1));
        let third = admission.admit(address(1));
        assert_eq!(admission.opening(), 2, "the first from 10.0.0.1 was closed for the third");
        tokio::time::timeout(Duration::from_millis(100), first.evicted.notified()).await.expect("the oldest is told");
        let others: Vec<_> = (2..5).map(|n| admission.admit(address(n))).collect();
        assert_eq!(admission.opening(), 4);
        tokio::time::timeout(Duration::from_millis(100), second.evicted.notified()).await.expect("the oldest overall is told");
        drop((first, third, others));
        assert_eq!(admission.opening(), 0, "every ticket leaves when dropped");
    }
}
