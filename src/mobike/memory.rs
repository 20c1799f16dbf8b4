//! What the core remembers of one IKE_SA between its MOBIKE tasks: the
//! little that charon has no place for (addresses, hosts and NAT state stay
//! in charon's IKE_SA, where swanctl and other plugins see them).
//!
//! Owns: [`SaMemory`]. Every collection in it is bounded; a peer cannot
//! make it grow.
//! Never: holds anything that cannot be rebuilt by running MOBIKE again
//! (losing it costs at most one extra exchange).

use super::addr::Path;

/// Most paths remembered as refused by the peer (RFC 4555 3.5, 3.9).
pub const MAX_REJECTED_PATHS: usize = 8;
/// How long a refused path is left out of path checks, in milliseconds: the
/// peer's policy or the NAT in between may change.
pub const REJECTED_PATH_TTL_MS: u64 = 60_000;
/// Requests retried after UNEXPECTED_NAT_DETECTED before the path counts as
/// refused (RFC 4555 3.9: "several times"; charon's default retransmits
/// are 5, a modified packet costs one try each).
pub const NAT_RETRIES: u8 = 3;
/// A preferred path that did not answer its test is tested again after
/// this long, doubled for each further failure up to
/// [`PREFERRED_RETRY_MAX_MS`] (RFC 4555 3.10: testing costs packets).
pub const PREFERRED_RETRY_MS: u64 = 10_000;
pub const PREFERRED_RETRY_MAX_MS: u64 = 300_000;

/// A path better than the current one (`preference`), while it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreferredPath {
    pub path: Path,
    /// When a task first saw it (the caller's clock, ms).
    pub since_ms: u64,
    /// Tests it did not answer.
    pub failures: u8,
    /// Not tested before this time (after a failed test).
    pub retry_at_ms: u64,
    /// A MOBIKE task was asked for at this time (`Action::QueueMobikeAfter`),
    /// so another is not asked for before.
    pub scheduled_for_ms: Option<u64>,
}

impl PreferredPath {
    /// When it may be tested: `delay_ms` after it appeared, and not before
    /// the backoff of a failed test ends.
    pub fn due_at(&self, delay_ms: u64) -> u64 {
        self.since_ms.saturating_add(delay_ms).max(self.retry_at_ms)
    }

    /// Records an unanswered test; returns the backoff.
    pub fn failed(&mut self, now_ms: u64) -> u64 {
        let backoff = PREFERRED_RETRY_MS
            .saturating_mul(1u64 << self.failures.min(8))
            .min(PREFERRED_RETRY_MAX_MS);
        self.failures = self.failures.saturating_add(1);
        self.retry_at_ms = now_ms.saturating_add(backoff);
        backoff
    }
}

/// Per-IKE_SA state kept between tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaMemory {
    /// NAT_DETECTION_DESTINATION_IP hash last received in an INFORMATIONAL
    /// response (what the peer saw as our address), to notice a changed
    /// NAT mapping.
    pub last_natd_dst_hash: Option<[u8; 20]>,
    /// Message ID of the newest request of the peer that updated addresses
    /// or the address set (RFC 4555 3.5, 3.6: older ones change nothing).
    pub newest_update_mid: Option<u32>,
    /// As responder: the path whose return routability is still to be
    /// confirmed (RFC 4555 3.5, 3.7), and whether the IPsec SAs wait for it
    /// (`return_routability = before`) or moved already (`after`).
    pub return_routability_pending: Option<(Path, bool)>,
    /// As responder: the path an IKE_SA without CHILD_SAs moved to without
    /// a return routability check; checked when its first CHILD_SA comes
    /// up (see [`SaMemory::child_sa_up`]).
    pub unchecked_path: Option<Path>,
    /// Paths the peer refused (UNACCEPTABLE_ADDRESSES, or repeated
    /// UNEXPECTED_NAT_DETECTED), with the time of refusal.
    pub rejected_paths: Vec<(Path, u64)>,
    /// UNEXPECTED_NAT_DETECTED answers received on the path being updated.
    pub nat_retries: u8,
    /// The address list last announced, with our address in the IP header
    /// then (at most MAX_ANNOUNCED_ADDRESSES entries).
    pub announced: Option<(std::net::IpAddr, Vec<std::net::IpAddr>)>,
    /// This host initiated the IKE_SA and MOBIKE is on: its packet counters
    /// are polled for silent path failures.
    pub liveness_watched: bool,
    /// Packet counters last seen, for silent path failures.
    pub liveness: super::liveness::Liveness,
    /// A better path than the current one, from the first task that saw
    /// it until one sees it gone or the IKE_SA moves there.
    pub preferred: Option<PreferredPath>,
    /// What `mobike-rs status` shows (see [`super::status`]).
    pub stats: super::status::SaStats,
    /// Nothing set in this memory outlives the call: the caller could not
    /// store it (its per-IKE_SA memory is full). A step that would have to
    /// remember security state (a pending return routability check) then
    /// refuses rather than forget it (RFC 4555 5.3).
    pub ephemeral: bool,
}

impl SaMemory {
    /// Records `hash`; true if a different one was recorded before, or
    /// none at all. Without a reference (an IKE_SA set up behind the NAT
    /// has seen NAT-D only in IKE_SA_INIT, which charon keeps), the
    /// mapping is suspected to have changed (RFC 4555 3.8 MAY): charon's
    /// `has_mapping_changed` answers no there, and an idle road warrior
    /// whose NAT mapped it to new ports then never recovers.
    pub fn mapping_changed(&mut self, hash: [u8; 20]) -> bool {
        match self.last_natd_dst_hash.replace(hash) {
            None => true,
            Some(old) => old != hash,
        }
    }

    /// Whether a request with message ID `mid` is older than one already
    /// processed; otherwise it becomes the newest.
    pub fn is_older_update(&mut self, mid: u32) -> bool {
        match self.newest_update_mid {
            Some(newest) if mid < newest => true,
            _ => {
                self.newest_update_mid = Some(mid);
                false
            }
        }
    }

    /// A CHILD_SA came up on the IKE_SA whose current path is `current`:
    /// true if that path was never checked (the IKE_SA moved while it had
    /// no IPsec SA), so a return routability check must follow now; the
    /// check is then pending with the SAs already moved (RFC 4555 3.7
    /// allows the check right after the update).
    pub fn child_sa_up(&mut self, current: Path) -> bool {
        match self.unchecked_path.take() {
            Some(p) if p == current && self.return_routability_pending.is_none() => {
                self.return_routability_pending = Some((p, false));
                true
            }
            _ => false,
        }
    }

    /// Remembers that the peer refused `path`.
    pub fn reject_path(&mut self, path: Path, now_ms: u64) {
        self.rejected_paths.retain(|(p, _)| *p != path);
        if self.rejected_paths.len() >= MAX_REJECTED_PATHS {
            self.rejected_paths.remove(0);
        }
        self.rejected_paths.push((path, now_ms));
    }

    /// Whether `path` was refused within [`REJECTED_PATH_TTL_MS`].
    pub fn is_rejected(&self, path: Path, now_ms: u64) -> bool {
        self.rejected_paths
            .iter()
            .any(|(p, at)| *p == path && now_ms.saturating_sub(*at) < REJECTED_PATH_TTL_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(l: &str, r: &str) -> Path {
        Path {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    #[test]
    fn older_updates_are_recognised() {
        let mut m = SaMemory::default();
        assert!(!m.is_older_update(5));
        assert!(!m.is_older_update(5), "a retransmission is not older");
        assert!(!m.is_older_update(7));
        assert!(m.is_older_update(6));
        assert_eq!(m.newest_update_mid, Some(7));
    }

    #[test]
    fn an_unchecked_path_is_checked_once_when_a_child_sa_comes_up() {
        let mut m = SaMemory::default();
        let p = path("198.18.1.1:4500", "198.18.2.2:4500");
        assert!(!m.child_sa_up(p), "nothing unchecked");
        m.unchecked_path = Some(p);
        assert!(
            !m.child_sa_up(path("198.18.1.1:4500", "198.18.2.3:4500")),
            "the IKE_SA moved on since: that move decides"
        );
        m.unchecked_path = Some(p);
        assert!(m.child_sa_up(p));
        assert_eq!(m.return_routability_pending, Some((p, false)));
        assert!(!m.child_sa_up(p), "once");
    }

    #[test]
    fn refused_paths_are_bounded_and_expire() {
        let mut m = SaMemory::default();
        for i in 0..20 {
            m.reject_path(path(&format!("198.18.2.{i}:4500"), "198.18.1.1:4500"), 1000);
        }
        assert_eq!(m.rejected_paths.len(), MAX_REJECTED_PATHS);
        let last = path("198.18.2.19:4500", "198.18.1.1:4500");
        assert!(m.is_rejected(last, 1000));
        assert!(!m.is_rejected(path("198.18.2.0:4500", "198.18.1.1:4500"), 1000));
        assert!(!m.is_rejected(last, 1000 + REJECTED_PATH_TTL_MS));
    }
}
