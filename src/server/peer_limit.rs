//! A limit for all, and a smaller one per peer address, under which both the open connections
//! (`listen`) and the request-body bytes held at once (`AppState`'s body budget) are taken: one
//! peer (a hostile pod opening idle sockets, or holding large bodies open) cannot take what the
//! API server needs.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// `all` units in all, at most `per_peer` of them to one peer address. A peer's units are taken
/// before the common ones, so a peer at its limit, or waiting on it, holds none of the others'.
pub(crate) struct PeerLimit {
    all: Arc<Semaphore>,
    per_peer: usize,
    peers: Arc<Mutex<Peers>>,
}

/// Each peer that holds or waits for units: its own semaphore, and how many hold or wait. An
/// entry goes with the last of them, so the map is as large as the peers being served.
type Peers = HashMap<IpAddr, (Arc<Semaphore>, usize)>;

/// Which limit refused [`PeerLimit::try_take`].
#[derive(Debug, PartialEq)]
pub(crate) enum Full {
    Peer,
    All,
}

/// Units taken, given back on drop. The fields drop in order: the units go back before the
/// peer's entry may go.
#[derive(Default)]
pub(crate) struct Share {
    _all: Option<OwnedSemaphorePermit>,
    _of_peer: Option<OwnedSemaphorePermit>,
    _peer: Option<Peer>,
}

/// A peer's entry, held while its units are held or waited for.
struct Peer {
    ip: IpAddr,
    semaphore: Arc<Semaphore>,
    peers: Arc<Mutex<Peers>>,
}

impl PeerLimit {
    pub(crate) fn new(all: usize, per_peer: usize) -> Self {
        PeerLimit {
            all: Arc::new(Semaphore::new(all)),
            per_peer,
            peers: Default::default(),
        }
    }

    /// `n` units at once, or which limit is full.
    pub(crate) fn try_take(&self, ip: IpAddr, n: u32) -> Result<Share, Full> {
        let peer = self.peer(ip);
        let of_peer = (peer.semaphore.clone().try_acquire_many_owned(n)).map_err(|_| Full::Peer)?;
        let all = (self.all.clone().try_acquire_many_owned(n)).map_err(|_| Full::All)?;
        Ok(Share {
            _all: Some(all),
            _of_peer: Some(of_peer),
            _peer: Some(peer),
        })
    }

    /// Waits until `n` units fit in `ip`'s share (when the peer is known), then in the common
    /// one; an error once the semaphores are closed.
    pub(crate) async fn take(&self, ip: Option<IpAddr>, n: u32) -> Result<Share, AcquireError> {
        let mut share = Share::default();
        if let Some(ip) = ip {
            let peer = self.peer(ip);
            let semaphore = peer.semaphore.clone();
            share._peer = Some(peer);
            share._of_peer = Some(semaphore.acquire_many_owned(n).await?);
        }
        share._all = Some(self.all.clone().acquire_many_owned(n).await?);
        Ok(share)
    }

    fn peer(&self, ip: IpAddr) -> Peer {
        let mut peers = self.peers.lock();
        let (semaphore, users) = peers
            .entry(ip)
            .or_insert_with(|| (Arc::new(Semaphore::new(self.per_peer)), 0));
        *users += 1;
        Peer {
            ip,
            semaphore: semaphore.clone(),
            peers: self.peers.clone(),
        }
    }

    #[cfg(test)]
    fn peers(&self) -> usize {
        self.peers.lock().len()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let mut peers = self.peers.lock();
        if let Some((_, users)) = peers.get_mut(&self.ip) {
            *users -= 1;
            if *users == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_peer_at_its_limit_holds_none_of_the_common_units() {
        let limit = PeerLimit::new(3, 2);
        let a = [limit.try_take(A, 1).unwrap(), limit.try_take(A, 1).unwrap()];
        assert_eq!(limit.try_take(A, 1).err(), Some(Full::Peer));
        let b = limit.try_take(B, 1).unwrap();
        assert_eq!(limit.try_take(B, 1).err(), Some(Full::All));
        drop(a);
        assert_eq!(limit.peers(), 1, "A holds nothing: its entry is gone");
        drop(b);
        assert_eq!(limit.peers(), 0);
        assert!(limit.try_take(A, 2).is_ok());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_no_entry_behind() {
        let limit = PeerLimit::new(10, 4);
        let held = limit.take(Some(A), 4).await.unwrap();
        let waiting = limit.take(Some(A), 1);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), waiting)
                .await
                .is_err()
        );
        drop(held);
        assert_eq!(limit.peers(), 0);
        // Unknown peers share the common units only.
        let unknown = limit.take(None, 10).await.unwrap();
        assert_eq!(limit.peers(), 0);
        drop(unknown);
        assert!(limit.try_take(B, 4).is_ok());
    }
}
