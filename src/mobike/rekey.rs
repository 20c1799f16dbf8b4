//! The original initiator's CHILD_SA rekeyings after a move, when the
//! kernel could not move the IPsec SAs in place.
//!
//! charon's `update_hosts` queues a CHILD_SA rekeying for each IPsec SA
//! the kernel cannot update in place (kernel-libipsec cannot). A peer in
//! the same situation rekeys as it processes our UPDATE_SA_ADDRESSES (RFC
//! 4555 3.5), and two rekeyings of one CHILD_SA at once collide (RFC 7296
//! 2.8.1): both peers pay an extra exchange while traffic on the new path
//! waits. So the rekeyings our move queued leave the queue and wait until
//! after the exchange ([`crate::mobike::Action::DeferChildRekeys`]); a
//! CHILD_SA the peer rekeyed by then is not rekeyed again.
//!
//! Owns: [`RekeyDeferral`], what one task remembers about it, and the
//! decisions: whether an update's rekeyings leave the queue, which
//! CHILD_SAs are remembered, when and which are rekeyed. The adapter
//! reports facts (the CHILD_SAs installed, how many rekeyings were queued
//! before and after `update_hosts`, later which CHILD_SAs are still
//! installed) and applies the answers.
//! Never: reads charon's task queue or the kernel itself, names a data
//! plane (whether the kernel moved the IPsec SAs in place is a fact: the
//! update queued no rekeying).
#![forbid(unsafe_code)]

/// A CHILD_SA as charon finds it again: its protocol (charon's
/// `protocol_id_t`) and inbound SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildSaRef {
    pub protocol: u8,
    pub spi_in: u32,
}

/// How the adapter applies the next `update_hosts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateAs {
    /// As it is; its rekeyings stay queued.
    Plain,
    /// Counting the CHILD_SA rekeyings queued before and after it; with
    /// `read_installed`, also listing the installed CHILD_SAs before it
    /// (the move itself, not the NAT update after the exchange).
    Deferring { read_installed: bool },
}

/// What a deferring update leads to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfterUpdate {
    /// Remove the queued CHILD_SA rekeyings from this one on (counting
    /// only CHILD_SA rekeyings, in queue order): those the update queued,
    /// after the ones queued before it.
    pub unqueue_from: Option<usize>,
    /// A line for the log (level, text).
    pub log: Option<(u8, String)>,
}

/// The rekeyings one task deferred, once it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeferredRekeys {
    /// How long after the end of the exchange they wait.
    pub wait_ms: u32,
    pub children: Vec<ChildSaRef>,
    /// A line for the log (level, text).
    pub log: (u8, String),
}

/// A deferred CHILD_SA as it is when its wait is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildSaNow {
    /// Still installed as it was (the peer did not rekey it).
    Installed { name: String, unique_id: u32 },
    /// Gone, or no longer installed: the peer's rekeying replaced it.
    Replaced,
}

/// One step of the deferred rekeyings, applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RekeyStep {
    Rekey(ChildSaRef),
    Log(u8, String),
}

/// Most CHILD_SAs remembered per task: more than an IKE_SA has in any
/// deployment we know of; beyond it a CHILD_SA is rekeyed as charon
/// queued it (the deferral is an optimisation, never a loss).
pub const MAX_DEFERRED: usize = 256;

/// What one task remembers about deferred rekeyings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RekeyDeferral {
    /// The next `update_hosts` defers its rekeyings.
    armed: bool,
    /// The wait after the exchange the last `DeferChildRekeys` asked for.
    wait_ms: u32,
    /// The CHILD_SAs installed at the move whose rekeyings left the queue.
    deferred: Option<Vec<ChildSaRef>>,
}

impl RekeyDeferral {
    /// [`crate::mobike::Action::DeferChildRekeys`]: the next update defers
    /// its rekeyings to `ms` after this exchange (the last one given
    /// counts).
    pub fn defer_next_update(&mut self, ms: u32) {
        self.armed = true;
        self.wait_ms = ms;
    }

    /// Before an [`crate::mobike::Action::UpdateHosts`]: how to apply it.
    pub fn before_update(&mut self) -> UpdateAs {
        if !std::mem::take(&mut self.armed) {
            return UpdateAs::Plain;
        }
        UpdateAs::Deferring {
            read_installed: self.deferred.is_none(),
        }
    }

    /// After a deferring update: `installed` are the CHILD_SAs installed
    /// before it (when [`UpdateAs::Deferring`] asked), `queued_before` and
    /// `queued_after` the CHILD_SA rekeyings queued before and after it.
    ///
    /// At the move, its rekeyings leave the queue only if it queued one
    /// for every installed CHILD_SA (so they are the ones the kernel could
    /// not move), and those CHILD_SAs are remembered. At the update after
    /// the exchange (its NAT state), what it queues is for CHILD_SAs
    /// remembered, ones the peer is rekeying or has rekeyed, or ones the
    /// peer's rekeying created on the new path: it leaves the queue. An
    /// update that queued nothing (the kernel updated in place) defers
    /// nothing.
    pub fn after_update(
        &mut self,
        installed: Option<Vec<ChildSaRef>>,
        queued_before: usize,
        queued_after: usize,
    ) -> AfterUpdate {
        let queued = queued_after.saturating_sub(queued_before);
        if queued == 0 {
            return AfterUpdate::default();
        }
        let Some(installed) = installed else {
            // the update after the exchange: the move deferred already
            return AfterUpdate {
                unqueue_from: self.deferred.is_some().then_some(queued_before),
                log: None,
            };
        };
        if queued != installed.len() || installed.len() > MAX_DEFERRED {
            return AfterUpdate::default();
        }
        self.deferred = Some(installed);
        AfterUpdate {
            unqueue_from: Some(queued_before),
            log: Some((
                1,
                format!(
                    "the kernel did not update {queued} CHILD_SA(s) in place; rekeying them \
                     after this exchange unless the peer rekeys them first"
                ),
            )),
        }
    }

    /// The task ends (its exchange is over, or the IKE_SA is going): the
    /// rekeyings deferred, to be looked at after their wait; `None` if
    /// there are none.
    pub fn at_end(&mut self) -> Option<DeferredRekeys> {
        let children = self.deferred.take()?;
        let log = (
            2,
            format!(
                "rekeying {} CHILD_SA(s) in {} ms unless the peer rekeys them first",
                children.len(),
                self.wait_ms
            ),
        );
        Some(DeferredRekeys {
            wait_ms: self.wait_ms,
            children,
            log,
        })
    }
}

/// The wait is over: each deferred CHILD_SA still installed as it was is
/// rekeyed now, unless the IKE_SA is passive (an HA cluster's standby); the
/// others were rekeyed by the peer. `now` tells how each one is.
pub fn rekeys_due(
    children: &[ChildSaRef],
    ike_sa_passive: bool,
    mut now: impl FnMut(ChildSaRef) -> ChildSaNow,
) -> Vec<RekeyStep> {
    let mut steps = Vec::new();
    let mut peers = 0u32;
    for &child in children {
        match now(child) {
            ChildSaNow::Installed { name, unique_id } if !ike_sa_passive => {
                steps.push(RekeyStep::Log(
                    1,
                    format!(
                        "rekeying CHILD_SA {name}{{{unique_id}}}: the peer did not rekey it \
                         after the move"
                    ),
                ));
                steps.push(RekeyStep::Rekey(child));
            }
            _ => peers += 1,
        }
    }
    if peers > 0 {
        steps.push(RekeyStep::Log(
            1,
            format!("the peer rekeyed {peers} CHILD_SA(s) after the move, not rekeying them again"),
        ));
    }
    steps
}

/// What the kernel shows of a CHILD_SA's inbound IPsec SA after an
/// update that asked the kernel to move it in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InPlace {
    /// Found on the IKE_SA's new addresses.
    OnNewPath,
    /// Not there: the kernel refused the update, and kernel-netlink had
    /// already removed the old SA (strongSwan before 6.1.0 ignores that).
    Missing,
    /// The kernel interface cannot tell.
    Unknown,
}

/// A CHILD_SA after an in-place update, as the adapter found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedChild {
    pub child: ChildSaRef,
    pub name: String,
    pub unique_id: u32,
    pub kernel: InPlace,
}

/// After `update_hosts`: a CHILD_SA whose IPsec SA the kernel did not
/// take to the new path is rekeyed there (new SAs, negotiated on the new
/// path), and the IKE_SA stays, as strongSwan 6.1.0 does; otherwise its
/// traffic would be black-holed until the next rekeying. Nothing when the
/// update queued rekeyings itself (the kernel cannot move IPsec SAs in
/// place: those rekeyings are the remedy already).
pub fn after_in_place_update(rekeys_queued: bool, children: &[MovedChild]) -> Vec<RekeyStep> {
    if rekeys_queued {
        return Vec::new();
    }
    let mut steps = Vec::new();
    for c in children.iter().filter(|c| c.kernel == InPlace::Missing) {
        steps.push(RekeyStep::Log(
            1,
            format!(
                "the kernel did not move CHILD_SA {}{{{}}} to the new path (its IPsec SA is gone), \
                 rekeying it; the IKE_SA stays",
                c.name, c.unique_id
            ),
        ));
        steps.push(RekeyStep::Rekey(c.child));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESP: u8 = 3;

    fn child(spi: u32) -> ChildSaRef {
        ChildSaRef {
            protocol: ESP,
            spi_in: spi,
        }
    }

    #[test]
    fn an_update_without_defer_is_plain() {
        let mut d = RekeyDeferral::default();
        assert_eq!(d.before_update(), UpdateAs::Plain);
        assert_eq!(d.at_end(), None);
    }

    #[test]
    fn the_move_reads_installed_once_and_the_nat_update_not() {
        let mut d = RekeyDeferral::default();
        d.defer_next_update(5);
        assert_eq!(
            d.before_update(),
            UpdateAs::Deferring {
                read_installed: true
            }
        );
        let a = d.after_update(Some(vec![child(1), child(2)]), 1, 3);
        assert_eq!(a.unqueue_from, Some(1));
        assert_eq!(
            a.log.unwrap().1,
            "the kernel did not update 2 CHILD_SA(s) in place; rekeying them after this \
             exchange unless the peer rekeys them first"
        );
        // only the armed update defers
        assert_eq!(d.before_update(), UpdateAs::Plain);
        d.defer_next_update(17);
        assert_eq!(
            d.before_update(),
            UpdateAs::Deferring {
                read_installed: false
            }
        );
        let a = d.after_update(None, 0, 2);
        assert_eq!(a.unqueue_from, Some(0));
        assert_eq!(a.log, None);
        let end = d.at_end().unwrap();
        assert_eq!(end.wait_ms, 17, "the last wait given counts");
        assert_eq!(end.children, vec![child(1), child(2)]);
        assert_eq!(
            end.log.1,
            "rekeying 2 CHILD_SA(s) in 17 ms unless the peer rekeys them first"
        );
        assert_eq!(d.at_end(), None, "handed over once");
    }

    #[test]
    fn an_in_place_update_defers_nothing() {
        let mut d = RekeyDeferral::default();
        d.defer_next_update(5);
        d.before_update();
        assert_eq!(
            d.after_update(Some(vec![child(1)]), 0, 0),
            AfterUpdate::default()
        );
        assert_eq!(d.at_end(), None);
    }

    #[test]
    fn a_partial_requeue_stays_as_charon_queued_it() {
        // one of two CHILD_SAs queued: not the kernel's inability alone
        let mut d = RekeyDeferral::default();
        d.defer_next_update(5);
        d.before_update();
        assert_eq!(
            d.after_update(Some(vec![child(1), child(2)]), 0, 1),
            AfterUpdate::default()
        );
        assert_eq!(d.at_end(), None);
        // and a NAT update after a move that deferred nothing keeps its own
        d.defer_next_update(5);
        assert_eq!(
            d.before_update(),
            UpdateAs::Deferring {
                read_installed: true
            }
        );
        assert_eq!(d.after_update(None, 0, 1).unqueue_from, None);
    }

    #[test]
    fn too_many_children_are_not_remembered() {
        let mut d = RekeyDeferral::default();
        d.defer_next_update(5);
        d.before_update();
        let many: Vec<_> = (0..=MAX_DEFERRED as u32).map(child).collect();
        let n = many.len();
        assert_eq!(d.after_update(Some(many), 0, n), AfterUpdate::default());
    }

    #[test]
    fn due_rekeys_only_what_the_peer_left() {
        let steps = rekeys_due(&[child(1), child(2), child(3)], false, |c| {
            if c.spi_in == 2 {
                ChildSaNow::Installed {
                    name: "net".into(),
                    unique_id: 7,
                }
            } else {
                ChildSaNow::Replaced
            }
        });
        assert_eq!(
            steps,
            vec![
                RekeyStep::Log(
                    1,
                    "rekeying CHILD_SA net{7}: the peer did not rekey it after the move".into()
                ),
                RekeyStep::Rekey(child(2)),
                RekeyStep::Log(
                    1,
                    "the peer rekeyed 2 CHILD_SA(s) after the move, not rekeying them again".into()
                ),
            ]
        );
    }

    #[test]
    fn a_passive_ike_sa_rekeys_nothing() {
        let steps = rekeys_due(&[child(1)], true, |_| ChildSaNow::Installed {
            name: "net".into(),
            unique_id: 1,
        });
        assert!(!steps.iter().any(|s| matches!(s, RekeyStep::Rekey(_))));
    }

    fn moved(spi: u32, kernel: InPlace) -> MovedChild {
        MovedChild {
            child: child(spi),
            name: "net".into(),
            unique_id: spi,
            kernel,
        }
    }

    #[test]
    fn a_child_sa_the_kernel_did_not_move_in_place_is_rekeyed() {
        let children = [
            moved(1, InPlace::OnNewPath),
            moved(2, InPlace::Missing),
            moved(3, InPlace::Unknown),
        ];
        let steps = after_in_place_update(false, &children);
        assert_eq!(steps.len(), 2);
        assert!(matches!(&steps[0], RekeyStep::Log(1, t)
            if t.contains("CHILD_SA net{2}") && t.contains("rekeying it; the IKE_SA stays")));
        assert_eq!(steps[1], RekeyStep::Rekey(child(2)));
        // the update queued rekeyings of its own: those are the remedy
        assert!(after_in_place_update(true, &children).is_empty());
        assert!(after_in_place_update(false, &[moved(1, InPlace::OnNewPath)]).is_empty());
    }
}
