//! Tests of the requester's steps (`task::initiator`): the requests
//! built and what their answers do.

use super::*;

#[test]
fn initiator_ike_auth_announces_support_and_addresses_once() {
    let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()];
    let s = sa(&[], &locals, &[]);
    let mut t = MobikeTask::new(true);
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    assert_eq!(
        t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out),
        Status::NeedMore
    );
    assert_eq!(
        notifies(&out),
        [
            NotifyType::MobikeSupported,
            NotifyType::AdditionalIp4Address
        ]
    );
    assert_eq!(
        data_of(&out, NotifyType::AdditionalIp4Address),
        [198, 18, 2, 2],
        "own IKE address not announced"
    );
    out.clear();
    t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(
        notifies(&out).is_empty(),
        "second IKE_AUTH round carries nothing"
    );
}

/// An update request as the original initiator sends it after a check.
fn update_request(t: &mut MobikeTask, s: &SaView<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    assert_eq!(
        t.build(s, &m, &mut SaMemory::default(), &env(), &mut out),
        Status::NeedMore
    );
    assert!(notifies(&out).contains(&NotifyType::UpdateSaAddresses));
    data_of(&out, NotifyType::Cookie2)
}

/// A roam's path check, answered on the second path.
fn answered_check(s: &SaView<'_>) -> (MobikeTask, Status, Vec<Action>) {
    let mut t = MobikeTask::new(true);
    t.roam(false);
    assert!(t.is_probing());
    let answer = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &[],
    );
    let mut out = Vec::new();
    let status = t.process(s, &answer, &mut SaMemory::default(), &env(), &mut out);
    (t, status, out)
}

#[test]
fn update_sa_addresses_in_an_answer_changes_nothing() {
    // Found by the exchange fuzz target: an answer to a plain request
    // carrying UPDATE_SA_ADDRESSES and UNACCEPTABLE_ADDRESSES was taken
    // as a refusal of an update we never sent.
    let s = sa(&[], &[], &[]);
    let mut t = MobikeTask::new(true);
    let mut out = Vec::new();
    let req = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    t.build(&s, &req, &mut SaMemory::default(), &env(), &mut out);
    let n = [
        raw(NotifyType::UpdateSaAddresses, &[]),
        raw(NotifyType::UnacceptableAddresses, &[]),
    ];
    let answer = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.1.2:4500",
        &n,
    );
    let mut mem = SaMemory::default();
    let mut out = Vec::new();
    assert_eq!(
        t.process(&s, &answer, &mut mem, &env(), &mut out),
        Status::Success
    );
    assert!(mem.rejected_paths.is_empty(), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
}

/// Runs a path check: the answer arrives on the second path.
fn checked_task(s: &SaView<'_>) -> MobikeTask {
    let (t, status, out) = answered_check(s);
    assert_eq!(status, Status::NeedMore, "an update follows");
    assert!(out.contains(&Action::UpdateHosts {
        me: Some("198.18.2.2:4500".parse().unwrap()),
        other: None,
        force: UpdateForce::All,
        reason: UpdateReason::PathCheckAnswered,
    }));
    assert!(!t.is_probing());
    t
}

#[test]
fn answered_check_is_followed_by_an_update_with_cookie2() {
    let s = sa(&[], &[], &[]);
    let mut t = checked_task(&s);
    let sent = update_request(&mut t, &s);
    assert_eq!(sent, vec![0x5a; 16]);
    let n = [raw(NotifyType::Cookie2, &sent)];
    let resp = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &n,
    );
    let mut out = Vec::new();
    assert_eq!(
        t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
        Status::Success
    );
}

#[test]
fn own_child_sa_rekeyings_wait_for_the_peers_one_round_trip_more() {
    let moved_at = |out: &[Action], reason| {
        out.iter()
            .position(|a| matches!(a, Action::UpdateHosts { reason: r, .. } if *r == reason))
            .expect("the update")
    };
    // Answered after 40 ms: the rekeyings wait 5 ms plus those 40.
    // Retransmitted until 9 s later: plus 1 s at most.
    for (answered_after, wait) in [(40, 45), (9_000, 1_005)] {
        let mut s = sa(&[], &[], &[]);
        s.now_ms = 1_000;
        // The check is answered on the second path: the move.
        let (mut t, _, out) = answered_check(&s);
        let at = moved_at(&out, UpdateReason::PathCheckAnswered);
        assert_eq!(
            action_before(&out, at),
            Some(&Action::DeferChildRekeys {
                ms: CHILD_REKEY_DEFER_MS
            })
        );
        let cookie = update_request(&mut t, &s);
        let n = [raw(NotifyType::Cookie2, &cookie)];
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &n,
        );
        s.now_ms += answered_after;
        let mut out = Vec::new();
        assert_eq!(
            t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
        let at = moved_at(&out, UpdateReason::NatStateAfterUpdate);
        assert_eq!(
            action_before(&out, at),
            Some(&Action::DeferChildRekeys { ms: wait })
        );
    }
    // The original responder moves only on the peer's word: its
    // rekeyings are not deferred (the mover waits for them instead).
    let s = sa(&[], &[], &[]);
    let mut t = MobikeTask::new(false);
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let req = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut out = Vec::new();
    t.process(&s, &req, &mut SaMemory::default(), &env(), &mut out);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::DeferChildRekeys { .. })),
        "{out:?}"
    );
}

#[test]
fn cookie2_mismatch_or_missing_echo_closes_the_ike_sa() {
    let s = sa(&[], &[], &[]);
    let wrong = [9u8; 16];
    let short = [0x5a; 7];
    for echoed in [Some(&wrong[..]), None, Some(&short[..])] {
        let mut t = checked_task(&s);
        update_request(&mut t, &s);
        let n: Vec<RawNotify> = echoed
            .map(|c| raw(NotifyType::Cookie2, c))
            .into_iter()
            .collect();
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &n,
        );
        let mut out = Vec::new();
        assert_eq!(
            t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Failed,
            "{echoed:?}"
        );
        assert!(out.contains(&Action::Log {
            level: 1,
            text: "COOKIE2 mismatch, closing IKE_SA".into()
        }));
    }
}

#[test]
fn a_stale_answer_changes_nothing_when_a_newer_update_is_queued() {
    let mut s = sa(&[], &[], &[]);
    s.newer_update_queued = true;
    let (_, status, out) = answered_check(&s);
    assert_eq!(status, Status::Success);
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
}

#[test]
fn informational_without_mobike_is_cancelled() {
    let mut s = sa(&[], &[], &[]);
    s.mobike_supported = false;
    let mut out = Vec::new();
    let m = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    let mut t = MobikeTask::new(true);
    t.roam(true);
    assert_eq!(
        t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out),
        Status::Success
    );
    assert!(out.contains(&Action::CancelExchange));
}

#[test]
fn dpd_behind_a_nat_detects_a_changed_mapping_and_updates() {
    let mut s = sa(&[], &[], &[]);
    s.nat_here = true;
    let mut mem = SaMemory::default();
    let dpd = |mem: &mut SaMemory, mapped: &str| {
        let mut t = MobikeTask::new(true);
        t.dpd(true);
        let mut out = Vec::new();
        let req = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        t.build(&s, &req, mem, &env(), &mut out);
        assert_eq!(
            notifies(&out),
            [
                NotifyType::NatDetectionSourceIp,
                NotifyType::NatDetectionDestinationIp
            ]
        );
        // the peer saw us at `mapped`
        let src_h = natd::hash(&[1; 8], &[2; 8], "198.18.1.1:4500".parse().unwrap());
        let dst_h = natd::hash(&[1; 8], &[2; 8], mapped.parse().unwrap());
        let n = [
            raw(NotifyType::NatDetectionSourceIp, &src_h),
            raw(NotifyType::NatDetectionDestinationIp, &dst_h),
        ];
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        out.clear();
        let st = t.process(&s, &resp, mem, &env(), &mut out);
        (st, out)
    };
    // the first DPD behind the NAT has nothing to compare with: an
    // update follows rather than an idle road warrior staying lost
    let (st, out) = dpd(&mut mem, "198.18.1.254:4500");
    assert_eq!(st, Status::NeedMore, "no reference: update");
    assert!(out.contains(&Action::SetCondition {
        cond: Condition::NatHere,
        value: true
    }));
    // The liveness poll's mapping checks back off (1 s, 2 s, ...) while
    // they find nothing, and start over when one finds a change.
    use crate::mobike::liveness::{Activity, Observation, Verdict};
    let poll = |mem: &mut SaMemory, now_ms: u64, n: u64| {
        mem.liveness.observe(&Observation {
            now_ms,
            inbound: n,
            outbound: n,
            timeout_ms: 1000,
            activity: Activity::Idle,
            nat_here: true,
        })
    };
    // traffic, a stop, a check; traffic, a stop, a check (backoff 2 s)
    for (t, n) in [(0, 1), (250, 2), (1250, 2), (1500, 3), (2500, 3)] {
        poll(&mut mem, t, n);
    }
    let (st, _) = dpd(&mut mem, "198.18.1.254:4500");
    assert_eq!(st, Status::Success, "same mapping");
    poll(&mut mem, 2750, 4);
    assert_eq!(poll(&mut mem, 3750, 4), Verdict::Fine, "backing off");
    let (st, out) = dpd(&mut mem, "198.18.1.254:31000");
    assert_eq!(st, Status::NeedMore, "changed mapping: an update follows");
    assert!(
        matches!(poll(&mut mem, 3800, 4), Verdict::CheckNatMapping { .. }),
        "a found change resets the backoff"
    );
    assert!(out.iter().any(|a| matches!(
        a,
        Action::UpdateHosts {
            force: UpdateForce::All,
            ..
        }
    )));
}

#[test]
fn migrate_forgets_the_cookie_and_builds_a_request() {
    let s = sa(&[], &[], &[]);
    let mut t = MobikeTask::new(false);
    let n = [raw(NotifyType::Cookie2, &[3; 8])];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    t.process(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
    t.migrate();
    t.roam(true);
    let mut out = Vec::new();
    let req = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.1.2:4500",
        &[],
    );
    assert_eq!(
        t.build(&s, &req, &mut SaMemory::default(), &env(), &mut out),
        Status::NeedMore
    );
    assert!(!notifies(&out).contains(&NotifyType::Cookie2));
}

#[test]
fn nat_prohibition_sends_no_nats_allowed_where_addresses_can_change() {
    let e = env_with(|p| p.nat_prohibition = true);
    let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
    let s = sa(&[], &locals, &[]);
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &e, &mut out);
    let expect = notify::encode(&Notify::NoNatsAllowed {
        src: "198.18.1.2:4500".parse().unwrap(),
        dst: "198.18.1.1:4500".parse().unwrap(),
    })
    .1
    .to_vec();
    assert_eq!(data_of(&out, NotifyType::NoNatsAllowed), expect);
    // the update after a check, from the answering path
    let mut t = checked_task(&s);
    let mut out = Vec::new();
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    t.build(&s, &m, &mut SaMemory::default(), &e, &mut out);
    assert_eq!(data_of(&out, NotifyType::NoNatsAllowed).len(), 12);
    // a plain DPD cannot change addresses: none
    let mut out = Vec::new();
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &e, &mut out);
    assert!(!notifies(&out).contains(&NotifyType::NoNatsAllowed));
    // without the setting: none
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(!notifies(&out).contains(&NotifyType::NoNatsAllowed));
}

/// A road warrior that moved to 198.18.2.2 and sent its update; the
/// peer can also be reached at 198.18.3.1 (via 198.18.2.2).
fn refused_update(
    mem: &mut SaMemory,
    with_other_path: bool,
    answer: NotifyType,
) -> (MobikeTask, Status, Vec<Action>) {
    let peers: Vec<SocketAddr> = vec![
        "198.18.1.1:4500".parse().unwrap(),
        "198.18.3.1:4500".parse().unwrap(),
    ];
    let routes = [
        Route {
            dst: peers[0].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
        Route {
            dst: peers[1].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
    ];
    let n_peers = if with_other_path { 2 } else { 1 };
    let mut s = sa(&peers[..n_peers], &[], &routes);
    let mut t = checked_task(&s);
    s.my_host = "198.18.2.2:4500".parse().unwrap();
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    let mut out = Vec::new();
    t.build(&s, &m, mem, &env(), &mut out);
    let cookie = data_of(&out, NotifyType::Cookie2);
    let n = [raw(answer, &[]), raw(NotifyType::Cookie2, &cookie)];
    let resp = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &n,
    );
    let mut out = Vec::new();
    let st = t.process(&s, &resp, mem, &env(), &mut out);
    (t, st, out)
}

#[test]
fn unexpected_nat_detected_is_retried_then_the_path_is_given_up() {
    let mut mem = SaMemory::default();
    for _ in 1..NAT_RETRIES {
        let (t, st, _) = refused_update(&mut mem, false, NotifyType::UnexpectedNatDetected);
        assert_eq!(st, Status::NeedMore, "a new request");
        assert!(t.will_check_or_update());
        assert!(mem.rejected_paths.is_empty());
    }
    let (_, st, out) = refused_update(&mut mem, false, NotifyType::UnexpectedNatDetected);
    assert_eq!(st, Status::Success);
    assert_eq!(mem.rejected_paths.len(), 1);
    // back to where we were before the check moved us
    assert!(out.contains(&Action::UpdateHosts {
        me: Some("198.18.1.2:4500".parse().unwrap()),
        other: Some("198.18.1.1:4500".parse().unwrap()),
        force: UpdateForce::All,
        reason: UpdateReason::PathRefused,
    }));
}

#[test]
fn unacceptable_addresses_make_the_initiator_try_another_path() {
    let mut mem = SaMemory::default();
    let (mut t, st, _) = refused_update(&mut mem, true, NotifyType::UnacceptableAddresses);
    assert_eq!(st, Status::NeedMore);
    assert!(t.is_probing(), "checks the other paths");
    // the refused path is left out of the check
    let peers: Vec<SocketAddr> = vec![
        "198.18.1.1:4500".parse().unwrap(),
        "198.18.3.1:4500".parse().unwrap(),
    ];
    let routes = [
        Route {
            dst: peers[0].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
        Route {
            dst: peers[1].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
    ];
    let mut s = sa(&peers, &[], &routes);
    s.my_host = "198.18.2.2:4500".parse().unwrap();
    let mut out = Vec::new();
    assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
    let sends: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send { dst, .. } => Some(dst.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(sends, ["198.18.3.1:4500"]);
}
