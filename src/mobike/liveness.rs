//! Silent path failure: packets keep leaving on an IKE_SA's CHILD_SAs but
//! nothing arrives (RFC 4555 3.5: unreliable or missing lower-layer hints;
//! the initiator re-evaluates its addresses). The caller reads the SAs'
//! packet counters now and then and hands them in; this decides when to
//! check all paths.
//!
//! Owns: the counters last seen and the probe backoff of one IKE_SA.
//! Never: costs an idle tunnel a packet (no outbound traffic, no probe),
//! or probes faster than the backoff (RFC 4621 5.1.3: path probing must
//! not make congestion worse).

/// First wait between probe rounds while the path stays silent; it
/// doubles up to [`BACKOFF_MAX_MS`].
pub const BACKOFF_MIN_MS: u64 = 1_000;
pub const BACKOFF_MAX_MS: u64 = 60_000;

/// Counters of one IKE_SA's CHILD_SAs as last seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    inbound: u64,
    outbound: u64,
    /// When packets started leaving without any arriving since.
    silent_since_ms: Option<u64>,
    /// No probe round before this time.
    next_probe_ms: u64,
    backoff_ms: u64,
    seen: bool,
}

/// What to do about one IKE_SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing (traffic flows, or the tunnel is idle, or not yet).
    Fine,
    /// Packets left for `silent_ms` without an answer: check all paths.
    Probe { silent_ms: u64 },
}

impl Liveness {
    /// Takes the CHILD_SAs' packet counters (sums) at `now_ms`.
    /// `timeout_ms` 0 disables detection; `busy` says an exchange is under
    /// way on the IKE_SA (its own retransmissions decide then).
    pub fn observe(
        &mut self,
        now_ms: u64,
        inbound: u64,
        outbound: u64,
        timeout_ms: u64,
        busy: bool,
    ) -> Verdict {
        let first = !self.seen;
        let (got, sent) = (
            inbound.wrapping_sub(self.inbound),
            outbound.wrapping_sub(self.outbound),
        );
        // Counters that go backwards belong to new CHILD_SAs (rekeying):
        // start over rather than read a huge difference.
        let reset = inbound < self.inbound || outbound < self.outbound;
        self.inbound = inbound;
        self.outbound = outbound;
        self.seen = true;
        if first || reset || timeout_ms == 0 {
            self.silent_since_ms = None;
            return Verdict::Fine;
        }
        if got > 0 {
            // The path works: forget the silence and the backoff.
            self.silent_since_ms = None;
            self.backoff_ms = 0;
            self.next_probe_ms = 0;
            return Verdict::Fine;
        }
        if sent == 0 && self.silent_since_ms.is_none() {
            return Verdict::Fine; // idle
        }
        let since = *self.silent_since_ms.get_or_insert(now_ms);
        let silent_ms = now_ms.saturating_sub(since);
        if busy || silent_ms < timeout_ms || now_ms < self.next_probe_ms {
            return Verdict::Fine;
        }
        self.backoff_ms = (self.backoff_ms * 2).clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        self.next_probe_ms = now_ms + self.backoff_ms;
        Verdict::Probe { silent_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_tunnel_is_never_probed() {
        let mut l = Liveness::default();
        for t in 0..100 {
            assert_eq!(l.observe(t * 250, 10, 10, 1000, false), Verdict::Fine);
        }
    }

    #[test]
    fn traffic_without_answers_probes_after_the_timeout_with_backoff() {
        let mut l = Liveness::default();
        assert_eq!(l.observe(0, 100, 100, 1000, false), Verdict::Fine);
        // packets leave, nothing arrives
        assert_eq!(l.observe(250, 100, 110, 1000, false), Verdict::Fine);
        assert_eq!(l.observe(750, 100, 120, 1000, false), Verdict::Fine);
        assert_eq!(
            l.observe(1250, 100, 130, 1000, false),
            Verdict::Probe { silent_ms: 1000 }
        );
        // no second round before the backoff
        assert_eq!(l.observe(1500, 100, 140, 1000, false), Verdict::Fine);
        assert_eq!(
            l.observe(2250, 100, 150, 1000, false),
            Verdict::Probe { silent_ms: 2000 }
        );
        // the next one waits 2 s, then 4 s ...
        assert_eq!(l.observe(3500, 100, 160, 1000, false), Verdict::Fine);
        assert!(matches!(
            l.observe(4250, 100, 170, 1000, false),
            Verdict::Probe { .. }
        ));
        assert_eq!(l.observe(8000, 100, 180, 1000, false), Verdict::Fine);
        assert!(matches!(
            l.observe(8250, 100, 190, 1000, false),
            Verdict::Probe { .. }
        ));
        // an answer resets everything
        assert_eq!(l.observe(8500, 101, 200, 1000, false), Verdict::Fine);
        assert_eq!(l.observe(8750, 101, 210, 1000, false), Verdict::Fine);
        assert_eq!(
            l.observe(9750, 101, 220, 1000, false),
            Verdict::Probe { silent_ms: 1000 }
        );
    }

    #[test]
    fn backoff_is_bounded_and_busy_or_disabled_waits() {
        let mut l = Liveness::default();
        l.observe(0, 0, 0, 1000, false);
        let mut probes = 0;
        let mut out = 0;
        for t in 1..2000u64 {
            out += 1;
            if let Verdict::Probe { .. } = l.observe(t * 250, 0, out, 1000, false) {
                probes += 1;
            }
        }
        // 500 s of silence: 1+2+4+...+32 s then one per minute
        assert!((10..=15).contains(&probes), "{probes}");
        let mut l = Liveness::default();
        l.observe(0, 0, 0, 1000, false);
        assert_eq!(l.observe(5000, 0, 50, 1000, true), Verdict::Fine);
        assert_eq!(l.observe(9000, 0, 90, 0, false), Verdict::Fine);
    }

    #[test]
    fn counters_of_new_child_sas_start_over() {
        let mut l = Liveness::default();
        l.observe(0, 500, 500, 1000, false);
        l.observe(250, 500, 510, 1000, false);
        // rekeyed: counters restart near zero
        assert_eq!(l.observe(2000, 3, 20, 1000, false), Verdict::Fine);
        assert_eq!(l.observe(2250, 3, 25, 1000, false), Verdict::Fine);
    }
}
