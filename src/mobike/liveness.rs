//! Silent failures seen in an IKE_SA's CHILD_SA packet counters. The caller
//! reads the counters now and then and hands them in; this decides when to
//! check, and what:
//!
//! - packets keep leaving but nothing arrives (RFC 4555 3.5: unreliable or
//!   missing lower-layer hints; the initiator re-evaluates its addresses):
//!   check all paths;
//! - behind a NAT, packets were arriving and stop while nothing leaves: the
//!   NAT may have mapped us to a new port and the peer keeps sending to the
//!   old one (RFC 4555 3.8; an idle road warrior that only receives never
//!   sends anything that would show it). Check the mapping with one
//!   INFORMATIONAL request carrying NAT-D, as charon's MOBIKE DPD does.
//!
//! Owns: the counters last seen and the backoff of each kind of check, for
//! one IKE_SA; which IKE_SAs are polled ([`polled`]), in which batches
//! ([`next_batch`]) and how often ([`poll_interval_ms`]); and what a
//! verdict asks the caller to do ([`remedy`]).
//! Never: costs an idle tunnel a packet (nothing arrived and nothing left
//! since the last check), checks a NAT mapping where there is no NAT,
//! checks more than once per stop of inbound traffic, or checks faster
//! than the backoff (RFC 4621 5.1.3: path probing must not make congestion
//! worse; a bursty download costs at most about one mapping check a
//! minute).

/// First wait between probe rounds while the path stays silent, and
/// between NAT mapping checks that found nothing; it doubles up to
/// [`BACKOFF_MAX_MS`].
pub const BACKOFF_MIN_MS: u64 = 1_000;
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// A NAT mapping check this long after the previous one starts the backoff
/// again at [`BACKOFF_MIN_MS`]: stops of inbound traffic that rare cost at
/// most one check per this interval anyway.
pub const NAT_CHECK_QUIET_MS: u64 = 2 * BACKOFF_MAX_MS;

/// Most IKE_SAs one poll job checks out, one after the other: a road
/// warrior with more watched IKE_SAs is polled in several jobs per round,
/// each bounded, so a round never holds a worker thread long and every
/// watched IKE_SA is polled whatever its unique ID.
pub const POLL_BATCH: usize = 256;

/// How often the counters are read: a quarter of `liveness_timeout`, at
/// least every 100 ms; 0 when detection is off.
pub fn poll_interval_ms(timeout_ms: u64) -> u64 {
    if timeout_ms == 0 {
        0
    } else {
        (timeout_ms / 4).max(100)
    }
}

/// Whether an IKE_SA's counters are worth reading: it is established, we
/// are its original initiator (RFC 4555 3.5 has the initiator decide
/// about paths; a responder waits for it) and MOBIKE was negotiated.
pub fn polled(established: bool, original_initiator: bool, mobike: bool) -> bool {
    established && original_initiator && mobike
}

/// The next batch of a round over the watched unique IDs (`watched`
/// sorted ascending, as taken at the start of the round): at most `cap`
/// IDs from `from` on, and where the next batch starts (`None`: the round
/// is done).
pub fn next_batch(watched: &[u32], from: u32, cap: usize) -> (&[u32], Option<u32>) {
    let start = watched.partition_point(|id| *id < from);
    let rest = &watched[start..];
    let batch = &rest[..rest.len().min(cap)];
    let more = (batch.len() < rest.len())
        .then(|| batch.last().and_then(|last| last.checked_add(1)))
        .flatten();
    (batch, more)
}

/// What is under way on the IKE_SA: `busy` when charon has an active
/// task on it, `our_mobike_request` when that is a request of one of our
/// MOBIKE tasks.
pub fn activity(busy: bool, our_mobike_request: bool) -> Activity {
    match (busy, our_mobike_request) {
        (false, _) => Activity::Idle,
        (true, true) => Activity::MobikeRequest,
        (true, false) => Activity::Other,
    }
}

/// A MOBIKE task to queue on the IKE_SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    /// Check all paths (charon's `roam`).
    pub roam: bool,
    /// A MOBIKE DPD: an INFORMATIONAL request with NAT-D (RFC 4555 3.8).
    pub dpd: bool,
}

/// What the caller does about a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    Nothing,
    /// Send the active MOBIKE request of ours to all paths now (it is
    /// already checking paths, and a new exchange would wait behind it);
    /// if it is gone by then, queue this instead.
    SendToAllPaths {
        else_queue: Queue,
    },
    Queue(Queue),
}

/// The remedy for `verdict`; `our_mobike_request` when the active
/// exchange is a request of one of our MOBIKE tasks.
pub fn remedy(verdict: Verdict, our_mobike_request: bool) -> Remedy {
    // all paths, with NAT-D: a NAT in front of us may have moved us too
    let probe = Queue {
        roam: true,
        dpd: true,
    };
    match verdict {
        Verdict::Fine => Remedy::Nothing,
        Verdict::Probe { .. } if our_mobike_request => Remedy::SendToAllPaths { else_queue: probe },
        Verdict::Probe { .. } => Remedy::Queue(probe),
        Verdict::CheckNatMapping { .. } => Remedy::Queue(Queue {
            roam: false,
            dpd: true,
        }),
    }
}

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
    /// When inbound packets were last seen arriving, while no NAT mapping
    /// check has been made for the stop that may follow (the check is
    /// "armed").
    inbound_seen_ms: Option<u64>,
    /// No NAT mapping check before this time.
    next_nat_check_ms: u64,
    nat_backoff_ms: u64,
    last_nat_check_ms: Option<u64>,
}

/// What is under way on the IKE_SA while its counters are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activity {
    /// No exchange.
    #[default]
    Idle,
    /// A request of one of our MOBIKE tasks: it can be sent to all paths
    /// at once, so a probe need not wait for it.
    MobikeRequest,
    /// Another exchange: its own retransmissions decide.
    Other,
}

/// One reading of an IKE_SA's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub now_ms: u64,
    /// Packets received on the CHILD_SAs (sum).
    pub inbound: u64,
    /// Packets sent on the CHILD_SAs (sum).
    pub outbound: u64,
    /// `liveness_timeout`; 0 disables both rules.
    pub timeout_ms: u64,
    pub activity: Activity,
    /// A NAT in front of us (charon's COND_NAT_HERE).
    pub nat_here: bool,
}

/// What to do about one IKE_SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing (traffic flows, or the tunnel is idle, or not yet).
    Fine,
    /// Packets left for `silent_ms` without an answer: check all paths.
    Probe { silent_ms: u64 },
    /// Behind a NAT, inbound packets stopped `quiet_ms` ago and nothing
    /// left since: check the NAT mapping (a MOBIKE DPD with NAT-D).
    CheckNatMapping { quiet_ms: u64 },
}

impl Liveness {
    /// Takes the CHILD_SAs' packet counters (sums) and what else is known
    /// of the IKE_SA at one moment.
    pub fn observe(&mut self, o: &Observation) -> Verdict {
        let now_ms = o.now_ms;
        let first = !self.seen;
        let (got, sent) = (
            o.inbound.wrapping_sub(self.inbound),
            o.outbound.wrapping_sub(self.outbound),
        );
        // Counters that go backwards belong to new CHILD_SAs (rekeying):
        // start over rather than read a huge difference.
        let reset = o.inbound < self.inbound || o.outbound < self.outbound;
        self.inbound = o.inbound;
        self.outbound = o.outbound;
        self.seen = true;
        if first || reset || o.timeout_ms == 0 {
            self.silent_since_ms = None;
            self.inbound_seen_ms = None;
            return Verdict::Fine;
        }
        if got > 0 {
            // The path works: forget the silence and the probe backoff. A
            // stop that follows is worth one NAT mapping check (the NAT
            // check's backoff stays: bursts of traffic must not reset it).
            self.silent_since_ms = None;
            self.backoff_ms = 0;
            self.next_probe_ms = 0;
            self.inbound_seen_ms = Some(now_ms);
            return Verdict::Fine;
        }
        if sent > 0 || self.silent_since_ms.is_some() {
            // Packets leave without answers: all paths are checked (with
            // NAT-D behind a NAT, see the adapter), which is this stop's check.
            self.inbound_seen_ms = None;
            return self.probe(now_ms, o.timeout_ms, o.activity == Activity::Other);
        }
        // Nothing arrives and nothing leaves: an idle tunnel, unless
        // packets were arriving and we are behind a NAT.
        if !o.nat_here {
            self.inbound_seen_ms = None;
            return Verdict::Fine;
        }
        let Some(last) = self.inbound_seen_ms else {
            return Verdict::Fine;
        };
        let quiet_ms = now_ms.saturating_sub(last);
        if o.activity != Activity::Idle
            || quiet_ms < o.timeout_ms
            || now_ms < self.next_nat_check_ms
        {
            // Still armed: the check follows once the exchange is done or
            // the backoff allows it.
            return Verdict::Fine;
        }
        self.inbound_seen_ms = None;
        self.nat_backoff_ms = match self.last_nat_check_ms {
            Some(at) if now_ms.saturating_sub(at) < NAT_CHECK_QUIET_MS => {
                (self.nat_backoff_ms * 2).clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS)
            }
            _ => BACKOFF_MIN_MS,
        };
        self.last_nat_check_ms = Some(now_ms);
        self.next_nat_check_ms = now_ms + self.nat_backoff_ms;
        Verdict::CheckNatMapping { quiet_ms }
    }

    /// The first rule, once packets leave without any arriving.
    fn probe(&mut self, now_ms: u64, timeout_ms: u64, busy: bool) -> Verdict {
        let since = *self.silent_since_ms.get_or_insert(now_ms);
        let silent_ms = now_ms.saturating_sub(since);
        if busy || silent_ms < timeout_ms || now_ms < self.next_probe_ms {
            return Verdict::Fine;
        }
        self.backoff_ms = (self.backoff_ms * 2).clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        self.next_probe_ms = now_ms + self.backoff_ms;
        Verdict::Probe { silent_ms }
    }

    /// A NAT-D exchange found our mapping changed (and an update follows):
    /// the next stop is checked without waiting for the backoff.
    pub fn nat_mapping_changed(&mut self) {
        self.nat_backoff_ms = 0;
        self.next_nat_check_ms = 0;
        self.last_nat_check_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_covers_every_watched_id_in_bounded_batches() {
        // ids far above 256 (a road warrior's unique IDs only grow)
        let watched: Vec<u32> = (1..=300)
            .map(|i| i * 7)
            .chain([70_000, u32::MAX - 1, u32::MAX])
            .collect();
        let (mut seen, mut from, mut jobs) = (Vec::new(), Some(0), 0);
        while let Some(f) = from {
            let (batch, more) = next_batch(&watched, f, POLL_BATCH);
            assert!(batch.len() <= POLL_BATCH);
            seen.extend_from_slice(batch);
            from = more;
            jobs += 1;
            assert!(jobs < 10);
        }
        assert_eq!(seen, watched);
        assert_eq!(jobs, 2);
        // a full last batch ends the round too
        let exact: Vec<u32> = (1..=256).collect();
        assert_eq!(next_batch(&exact, 0, 256), (&exact[..], None));
        assert_eq!(next_batch(&[], 0, 256), (&[][..], None));
        // the cursor is an ID: an IKE_SA gone mid-round shifts nothing
        assert_eq!(next_batch(&[5, 9, 12], 6, 1), (&[9][..], Some(10)));
    }

    #[test]
    fn only_established_mobike_ike_sas_we_initiated_are_polled() {
        assert!(polled(true, true, true));
        for (e, i, m) in [
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            assert!(!polled(e, i, m));
        }
        assert_eq!(poll_interval_ms(0), 0);
        assert_eq!(poll_interval_ms(1000), 250);
        assert_eq!(poll_interval_ms(200), 100);
    }

    #[test]
    fn a_probe_reuses_our_active_request_and_a_mapping_check_is_a_dpd() {
        let probe = Verdict::Probe { silent_ms: 1000 };
        let all = Queue {
            roam: true,
            dpd: true,
        };
        assert_eq!(
            remedy(probe, true),
            Remedy::SendToAllPaths { else_queue: all }
        );
        assert_eq!(remedy(probe, false), Remedy::Queue(all));
        assert_eq!(
            remedy(Verdict::CheckNatMapping { quiet_ms: 1 }, true),
            Remedy::Queue(Queue {
                roam: false,
                dpd: true
            })
        );
        assert_eq!(remedy(Verdict::Fine, true), Remedy::Nothing);
        assert_eq!(activity(false, true), Activity::Idle);
        assert_eq!(activity(true, true), Activity::MobikeRequest);
        assert_eq!(activity(true, false), Activity::Other);
    }

    /// The first rule's readings: not behind a NAT; `busy` is another
    /// exchange under way.
    fn see(
        l: &mut Liveness,
        now_ms: u64,
        inbound: u64,
        outbound: u64,
        timeout_ms: u64,
        busy: bool,
    ) -> Verdict {
        l.observe(&Observation {
            now_ms,
            inbound,
            outbound,
            timeout_ms,
            activity: if busy {
                Activity::Other
            } else {
                Activity::Idle
            },
            nat_here: false,
        })
    }

    /// Behind a NAT, nothing under way, liveness_timeout 1 s.
    fn nat(l: &mut Liveness, now_ms: u64, inbound: u64, outbound: u64) -> Verdict {
        l.observe(&Observation {
            now_ms,
            inbound,
            outbound,
            timeout_ms: 1000,
            activity: Activity::Idle,
            nat_here: true,
        })
    }

    /// Inbound packets arrive until `until_ms` (polls every 250 ms from
    /// `from_ms`), the road warrior answering each; returns the counters.
    fn receive(l: &mut Liveness, from_ms: u64, until_ms: u64, mut n: u64) -> u64 {
        let mut t = from_ms;
        while t <= until_ms {
            n += 10;
            assert_eq!(nat(l, t, n, n), Verdict::Fine);
            t += 250;
        }
        n
    }

    #[test]
    fn an_idle_tunnel_is_never_probed() {
        let mut l = Liveness::default();
        for t in 0..100 {
            assert_eq!(see(&mut l, t * 250, 10, 10, 1000, false), Verdict::Fine);
        }
    }

    #[test]
    fn traffic_without_answers_probes_after_the_timeout_with_backoff() {
        let mut l = Liveness::default();
        assert_eq!(see(&mut l, 0, 100, 100, 1000, false), Verdict::Fine);
        // packets leave, nothing arrives
        assert_eq!(see(&mut l, 250, 100, 110, 1000, false), Verdict::Fine);
        assert_eq!(see(&mut l, 750, 100, 120, 1000, false), Verdict::Fine);
        assert_eq!(
            see(&mut l, 1250, 100, 130, 1000, false),
            Verdict::Probe { silent_ms: 1000 }
        );
        // no second round before the backoff
        assert_eq!(see(&mut l, 1500, 100, 140, 1000, false), Verdict::Fine);
        assert_eq!(
            see(&mut l, 2250, 100, 150, 1000, false),
            Verdict::Probe { silent_ms: 2000 }
        );
        // the next one waits 2 s, then 4 s ...
        assert_eq!(see(&mut l, 3500, 100, 160, 1000, false), Verdict::Fine);
        assert!(matches!(
            see(&mut l, 4250, 100, 170, 1000, false),
            Verdict::Probe { .. }
        ));
        assert_eq!(see(&mut l, 8000, 100, 180, 1000, false), Verdict::Fine);
        assert!(matches!(
            see(&mut l, 8250, 100, 190, 1000, false),
            Verdict::Probe { .. }
        ));
        // an answer resets everything
        assert_eq!(see(&mut l, 8500, 101, 200, 1000, false), Verdict::Fine);
        assert_eq!(see(&mut l, 8750, 101, 210, 1000, false), Verdict::Fine);
        assert_eq!(
            see(&mut l, 9750, 101, 220, 1000, false),
            Verdict::Probe { silent_ms: 1000 }
        );
    }

    #[test]
    fn backoff_is_bounded_and_busy_or_disabled_waits() {
        let mut l = Liveness::default();
        see(&mut l, 0, 0, 0, 1000, false);
        let mut probes = 0;
        let mut out = 0;
        for t in 1..2000u64 {
            out += 1;
            if let Verdict::Probe { .. } = see(&mut l, t * 250, 0, out, 1000, false) {
                probes += 1;
            }
        }
        // 500 s of silence: 1+2+4+...+32 s then one per minute
        assert!((10..=15).contains(&probes), "{probes}");
        let mut l = Liveness::default();
        see(&mut l, 0, 0, 0, 1000, false);
        assert_eq!(see(&mut l, 5000, 0, 50, 1000, true), Verdict::Fine);
        assert_eq!(see(&mut l, 9000, 0, 90, 0, false), Verdict::Fine);
    }

    #[test]
    fn counters_of_new_child_sas_start_over() {
        let mut l = Liveness::default();
        see(&mut l, 0, 500, 500, 1000, false);
        see(&mut l, 250, 500, 510, 1000, false);
        // rekeyed: counters restart near zero
        assert_eq!(see(&mut l, 2000, 3, 20, 1000, false), Verdict::Fine);
        assert_eq!(see(&mut l, 2250, 3, 25, 1000, false), Verdict::Fine);
    }

    #[test]
    fn behind_a_nat_a_stop_of_inbound_traffic_is_checked_once() {
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        // nothing arrives, nothing leaves: the mapping may have changed
        assert_eq!(nat(&mut l, 1250, n, n), Verdict::Fine);
        assert_eq!(nat(&mut l, 1750, n, n), Verdict::Fine);
        assert_eq!(
            nat(&mut l, 2000, n, n),
            Verdict::CheckNatMapping { quiet_ms: 1000 }
        );
        // once per stop, however long it lasts
        for t in 9..2000 {
            assert_eq!(nat(&mut l, t * 250, n, n), Verdict::Fine, "at {t}");
        }
    }

    #[test]
    fn an_idle_tunnel_behind_a_nat_is_never_checked() {
        let mut l = Liveness::default();
        for t in 0..1000 {
            assert_eq!(nat(&mut l, t * 250, 10, 10), Verdict::Fine);
        }
    }

    #[test]
    fn without_a_nat_a_stop_of_inbound_traffic_costs_nothing() {
        let mut l = Liveness::default();
        let mut n = 0;
        for t in 0..=4 {
            n += 10;
            see(&mut l, t * 250, n, n, 1000, false);
        }
        for t in 5..1000 {
            assert_eq!(see(&mut l, t * 250, n, n, 1000, false), Verdict::Fine);
        }
    }

    #[test]
    fn the_check_waits_for_an_exchange_and_leaves_silence_with_traffic_to_the_probe() {
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        let busy = |l: &mut Liveness, now_ms, activity| {
            l.observe(&Observation {
                now_ms,
                inbound: n,
                outbound: n,
                timeout_ms: 1000,
                activity,
                nat_here: true,
            })
        };
        // our own MOBIKE request (charon's DPD, say) is under way: it carries
        // NAT-D already, the check waits, still armed
        assert_eq!(busy(&mut l, 2000, Activity::MobikeRequest), Verdict::Fine);
        assert_eq!(busy(&mut l, 2250, Activity::Other), Verdict::Fine);
        assert_eq!(
            busy(&mut l, 2500, Activity::Idle),
            Verdict::CheckNatMapping { quiet_ms: 1500 }
        );
        // packets leave without answers: the first rule, all paths
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        assert_eq!(nat(&mut l, 1250, n, n + 1), Verdict::Fine);
        assert_eq!(nat(&mut l, 1750, n, n + 1), Verdict::Fine);
        assert_eq!(
            nat(&mut l, 2250, n, n + 1),
            Verdict::Probe { silent_ms: 1000 }
        );
        for t in 10..400 {
            assert!(
                !matches!(
                    nat(&mut l, t * 250, n, n + 1),
                    Verdict::CheckNatMapping { .. }
                ),
                "at {t}"
            );
        }
        // disabled
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        let off = l.observe(&Observation {
            now_ms: 5000,
            inbound: n,
            outbound: n,
            timeout_ms: 0,
            activity: Activity::Idle,
            nat_here: true,
        });
        assert_eq!(off, Verdict::Fine);
    }

    #[test]
    fn traffic_that_flows_again_rearms_the_check_and_a_found_change_resets_the_backoff() {
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        assert!(matches!(
            nat(&mut l, 2000, n, n),
            Verdict::CheckNatMapping { .. }
        ));
        // the check found nothing: traffic flows, stops again; next check
        // once the backoff (1 s, then 2 s) has passed
        let n = receive(&mut l, 2250, 2500, n);
        assert!(matches!(
            nat(&mut l, 3500, n, n),
            Verdict::CheckNatMapping { .. }
        ));
        let n = receive(&mut l, 3750, 4000, n);
        assert_eq!(nat(&mut l, 5000, n, n), Verdict::Fine, "backoff 2 s");
        assert_eq!(nat(&mut l, 5250, n, n), Verdict::Fine);
        assert_eq!(
            nat(&mut l, 5500, n, n),
            Verdict::CheckNatMapping { quiet_ms: 1500 }
        );
        // this one found a changed mapping: the next stop is checked at once
        l.nat_mapping_changed();
        let n = receive(&mut l, 5750, 6000, n);
        assert_eq!(
            nat(&mut l, 7000, n, n),
            Verdict::CheckNatMapping { quiet_ms: 1000 }
        );
        // counters of new CHILD_SAs (rekeying) disarm
        let n = receive(&mut l, 7250, 9000, n);
        assert_eq!(nat(&mut l, 9250, 3, 3), Verdict::Fine);
        for t in 38..100 {
            assert_eq!(nat(&mut l, t * 250, 3, 3), Verdict::Fine);
        }
        let _ = n;
    }

    #[test]
    fn a_bursty_download_costs_about_one_check_a_minute() {
        let mut l = Liveness::default();
        let (mut n, mut checks, mut late) = (0u64, 0u32, 0u32);
        // 250 ms of traffic every 5 s for an hour
        for t in 0..(3600 * 4) {
            if t % 20 == 0 {
                n += 10;
            }
            if let Verdict::CheckNatMapping { .. } = nat(&mut l, t * 250, n, n) {
                checks += 1;
                late += u32::from(t * 250 >= 600_000);
            }
        }
        // 1, 2, 4 ... 32 s apart, then one a minute
        assert!((55..=70).contains(&checks), "{checks}");
        assert!(late <= 51, "{late} in the last 50 minutes");
        // a stop long after the last check starts the backoff over
        let mut l = Liveness::default();
        let n = receive(&mut l, 0, 1000, 0);
        assert!(matches!(
            nat(&mut l, 2000, n, n),
            Verdict::CheckNatMapping { .. }
        ));
        let n = receive(&mut l, 2250, 2500, n);
        assert!(matches!(
            nat(&mut l, 3500, n, n),
            Verdict::CheckNatMapping { .. }
        ));
        let n = receive(&mut l, 200_000, 200_250, n);
        assert_eq!(
            nat(&mut l, 201_250, n, n),
            Verdict::CheckNatMapping { quiet_ms: 1000 }
        );
        let n = receive(&mut l, 201_500, 201_750, n);
        assert_eq!(
            nat(&mut l, 202_750, n, n),
            Verdict::CheckNatMapping { quiet_ms: 1000 }
        );
    }
}
