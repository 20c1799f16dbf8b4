//! Tests of the responder's steps (`task::responder`): what a
//! request does and the answer built to it.

use super::*;

#[test]
fn responder_honours_the_connections_mobike_setting() {
    let n = [raw(NotifyType::MobikeSupported, &[])];
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &n);
    let mut s = sa(&[], &[], &[]);
    s.mobike_configured = false;
    let mut out = Vec::new();
    MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(!out.contains(&Action::EnableExtension(Extension::Mobike)));
    s.mobike_configured = true;
    out.clear();
    MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(out.contains(&Action::EnableExtension(Extension::Mobike)));
    // the response carries MOBIKE_SUPPORTED only once MOBIKE is on
    out.clear();
    let resp = msg(Exchange::IkeAuth, "198.18.1.1:4500", "198.18.1.2:4500", &[]);
    s.mobike_supported = false;
    assert_eq!(
        MobikeTask::new(false).build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
        Status::Success
    );
    assert!(notifies(&out).is_empty());
}

#[test]
fn malformed_notifies_are_logged_and_change_nothing() {
    let n = [
        raw(NotifyType::AdditionalIp4Address, &[1, 2, 3]),
        raw(NotifyType::UpdateSaAddresses, &[0]),
    ];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut out = Vec::new();
    let mut t = MobikeTask::new(false);
    t.process(
        &sa(&[], &[], &[]),
        &m,
        &mut SaMemory::default(),
        &env(),
        &mut out,
    );
    assert!(
        out.iter()
            .all(|a| matches!(a, Action::Log { level: 1, .. })),
        "{out:?}"
    );
    assert_eq!(out.len(), 2);
    assert!(!t.will_check_or_update());
}

#[test]
fn responder_moves_to_the_update_path_and_echoes_cookie2() {
    let cookie = [7u8; 16];
    let n = [
        raw(NotifyType::UpdateSaAddresses, &[]),
        raw(NotifyType::Cookie2, &cookie),
    ];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let s = sa(&[], &[], &[]);
    let mut t = MobikeTask::new(false);
    let mut out = Vec::new();
    assert_eq!(
        t.process(&s, &m, &mut SaMemory::default(), &env(), &mut out),
        Status::NeedMore
    );
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
    out.clear();
    let resp = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &[],
    );
    assert_eq!(
        t.build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
        Status::Success
    );
    assert_eq!(data_of(&out, NotifyType::Cookie2), cookie);
}

#[test]
fn duplicate_update_requests_move_to_the_same_place() {
    // A retransmitted request is answered by charon from its cache;
    // should a duplicate reach a task, it asks for the same hosts again.
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let s = sa(&[], &[], &[]);
    let mut t = MobikeTask::new(false);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    t.process(&s, &m, &mut SaMemory::default(), &env(), &mut a);
    t.process(&s, &m, &mut SaMemory::default(), &env(), &mut b);
    assert_eq!(a, b);
}

#[test]
fn responder_moves_ipsec_sas_only_after_the_return_routability_check() {
    let e = env();
    let mut mem = SaMemory::default();
    let (_, out) = peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
    assert!(updates(&out).is_empty(), "nothing moves before the check");
    assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
    let checked = path("198.18.1.1:4500", "198.18.2.2:4500");
    assert_eq!(mem.return_routability_pending, Some((checked, true)));

    // the queued task: an INFORMATIONAL request with a fresh COOKIE2,
    // while the IKE_SA is still on the old path
    let mut s = gw_view();
    s.other_host = "198.18.1.2:4500".parse().unwrap();
    let mut t = MobikeTask::new(true);
    let mut out = Vec::new();
    let req = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &[],
    );
    assert_eq!(t.build(&s, &req, &mut mem, &e, &mut out), Status::NeedMore);
    let cookie = data_of(&out, NotifyType::Cookie2);
    assert!(!notifies(&out).contains(&NotifyType::UpdateSaAddresses));
    // sent to the checked address only, even without a route (RFC 4555 3.7)
    out.clear();
    assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
    assert_eq!(
        out,
        [Action::Send {
            src: checked.local,
            dst: checked.remote
        }]
    );
    assert!(!t.is_probing());

    let n = [raw(NotifyType::Cookie2, &cookie)];
    let resp = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    out.clear();
    assert_eq!(
        t.process(&s, &resp, &mut mem, &e, &mut out),
        Status::Success
    );
    assert!(out.contains(&Action::UpdateHosts {
        me: Some(checked.local),
        other: Some(checked.remote),
        force: UpdateForce::All,
        reason: UpdateReason::ReturnRoutabilityConfirmed,
    }));
    assert_eq!(mem.return_routability_pending, None);

    // a wrong echo closes the IKE_SA and moves nothing
    let (_, _) = peer_update(&e, &mut mem, "198.18.2.2:4500", 4);
    let mut t = MobikeTask::new(true);
    t.build(&s, &req, &mut mem, &e, &mut Vec::new());
    let n = [raw(NotifyType::Cookie2, &[1; 16])];
    let resp = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut out = Vec::new();
    assert_eq!(t.process(&s, &resp, &mut mem, &e, &mut out), Status::Failed);
    assert!(updates(&out).is_empty());
}

#[test]
fn a_childless_ike_sa_moves_at_once_and_is_checked_with_its_first_child_sa() {
    let e = env();
    let mut mem = SaMemory::default();
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut s = gw_view();
    s.other_host = "198.18.1.2:4500".parse().unwrap();
    s.has_child_sas = false;
    let mut out = Vec::new();
    let mut t = MobikeTask::new(false);
    assert_eq!(t.process(&s, &m, &mut mem, &e, &mut out), Status::NeedMore);
    let moved = path("198.18.1.1:4500", "198.18.2.2:4500");
    assert_eq!(
        updates(&out),
        [(UpdateForce::All, UpdateReason::PeerUpdate)]
    );
    assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
    assert_eq!(mem.return_routability_pending, None);
    assert_eq!(mem.unchecked_path, Some(moved));
    // the first CHILD_SA on that path asks for the check, once
    assert!(mem.child_sa_up(moved));
    assert_eq!(mem.return_routability_pending, Some((moved, false)));
    // with IPsec SAs the check comes first again, and forgets the
    // unchecked path
    mem = SaMemory::default();
    mem.unchecked_path = Some(moved);
    let (_, out) = peer_update(&e, &mut mem, "198.18.2.3:4500", 4);
    assert!(updates(&out).is_empty());
    assert_eq!(mem.unchecked_path, None);
}

#[test]
fn a_move_whose_check_cannot_be_remembered_is_refused() {
    let e = env();
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    for childless in [true, false] {
        let mut mem = SaMemory {
            ephemeral: true,
            ..SaMemory::default()
        };
        let mut s = gw_view();
        s.other_host = "198.18.1.2:4500".parse().unwrap();
        s.has_child_sas = !childless;
        let mut out = Vec::new();
        let mut t = MobikeTask::new(false);
        t.process(&s, &m, &mut mem, &e, &mut out);
        assert!(updates(&out).is_empty(), "childless {childless}: {out:?}");
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Log { level: 1, text }
            if text.contains("per-IKE_SA memory full"))));
    }
}

#[test]
fn a_newer_update_restarts_the_check_and_the_old_answer_moves_nothing() {
    let e = env();
    let mut mem = SaMemory::default();
    peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
    let s = gw_view();
    let mut t = MobikeTask::new(true);
    let req = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &[],
    );
    let mut out = Vec::new();
    t.build(&s, &req, &mut mem, &e, &mut out);
    let cookie = data_of(&out, NotifyType::Cookie2);
    // the initiator moves again before the check is answered
    peer_update(&e, &mut mem, "198.18.3.2:4500", 5);
    assert_eq!(
        mem.return_routability_pending,
        Some((path("198.18.1.1:4500", "198.18.3.2:4500"), true))
    );
    let mut s2 = gw_view();
    s2.other_host = "198.18.3.2:4500".parse().unwrap();
    let n = [raw(NotifyType::Cookie2, &cookie)];
    let resp = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    out.clear();
    assert_eq!(
        t.process(&s2, &resp, &mut mem, &e, &mut out),
        Status::Success
    );
    assert!(updates(&out).is_empty(), "{out:?}");
    assert!(mem.return_routability_pending.is_some());
}

#[test]
fn return_routability_after_and_off() {
    let after = env_with(|p| p.return_routability = ReturnRoutability::After);
    let mut mem = SaMemory::default();
    let (_, out) = peer_update(&after, &mut mem, "198.18.2.2:4500", 1);
    assert_eq!(
        updates(&out),
        [(UpdateForce::All, UpdateReason::PeerUpdate)]
    );
    assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
    assert_eq!(
        mem.return_routability_pending,
        Some((path("198.18.1.1:4500", "198.18.2.2:4500"), false))
    );
    let off = env_with(|p| p.return_routability = ReturnRoutability::Off);
    let mut mem = SaMemory::default();
    let (_, out) = peer_update(&off, &mut mem, "198.18.2.2:4500", 1);
    assert_eq!(
        updates(&out),
        [(UpdateForce::All, UpdateReason::PeerUpdate)]
    );
    assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
    assert_eq!(mem.return_routability_pending, None);
    // an update on the path in use needs no check
    let mut mem = SaMemory::default();
    let (_, out) = peer_update(&env(), &mut mem, "198.18.1.2:4500", 1);
    assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
}

#[test]
fn older_requests_are_answered_and_change_nothing() {
    let e = env();
    let mut mem = SaMemory::default();
    peer_update(&e, &mut mem, "198.18.2.2:4500", 7);
    let (_, out) = peer_update(&e, &mut mem, "198.18.3.2:4500", 6);
    assert!(updates(&out).is_empty());
    assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
    // an older address list is not taken either
    let n = [raw(NotifyType::NoAdditionalAddresses, &[])];
    let mut m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    m.message_id = 5;
    let mut out = Vec::new();
    MobikeTask::new(false).process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
    assert!(!out.contains(&Action::ClearPeerAddresses));
}

#[test]
fn responder_refuses_a_modified_update_with_unexpected_nat_detected() {
    let said = notify::encode(&Notify::NoNatsAllowed {
        src: "198.18.2.2:4500".parse().unwrap(),
        dst: "198.18.1.1:4500".parse().unwrap(),
    })
    .1;
    let n = [
        raw(NotifyType::UpdateSaAddresses, &[]),
        raw(NotifyType::NoNatsAllowed, &said),
        raw(NotifyType::NoAdditionalAddresses, &[]),
        raw(NotifyType::Cookie2, &[4; 8]),
    ];
    let s = sa(&[], &[], &[]);
    for (src, refused) in [("198.18.1.254:31000", true), ("198.18.2.2:4500", false)] {
        let m = msg(Exchange::Informational, src, "198.18.1.1:4500", &n);
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        let mut mem = SaMemory::default();
        t.process(&s, &m, &mut mem, &env(), &mut out);
        assert!(updates(&out).is_empty(), "{src}: the check comes first");
        assert_eq!(
            out.contains(&Action::QueueReturnRoutabilityCheck),
            !refused,
            "{src}"
        );
        assert_eq!(out.contains(&Action::ClearPeerAddresses), !refused);
        let mut resp = Vec::new();
        let r = msg(Exchange::Informational, "198.18.1.1:4500", src, &[]);
        assert_eq!(
            t.build(&s, &r, &mut mem, &env(), &mut resp),
            Status::Success
        );
        assert_eq!(
            notifies(&resp).contains(&NotifyType::UnexpectedNatDetected),
            refused
        );
        assert!(notifies(&resp).contains(&NotifyType::Cookie2));
    }
    // in IKE_AUTH: no MOBIKE on that IKE_SA
    let n = [
        raw(NotifyType::MobikeSupported, &[]),
        raw(NotifyType::NoNatsAllowed, &said),
    ];
    let m = msg(
        Exchange::IkeAuth,
        "198.18.1.254:31000",
        "198.18.1.1:4500",
        &n,
    );
    let mut t = MobikeTask::new(false);
    let mut out = Vec::new();
    t.process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(!out.contains(&Action::EnableExtension(Extension::Mobike)));
    let mut resp = Vec::new();
    let r = msg(
        Exchange::IkeAuth,
        "198.18.1.1:4500",
        "198.18.1.254:31000",
        &[],
    );
    t.build(&s, &r, &mut SaMemory::default(), &env(), &mut resp);
    assert_eq!(notifies(&resp), [NotifyType::UnexpectedNatDetected]);
    // and the initiator gives that IKE_SA up
    let n = [raw(NotifyType::UnexpectedNatDetected, &[])];
    let m = msg(Exchange::IkeAuth, "198.18.1.1:4500", "198.18.1.2:4500", &n);
    assert_eq!(
        MobikeTask::new(true).process(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new()),
        Status::Failed
    );
}

#[test]
fn responder_refuses_unacceptable_addresses_and_drops_them_from_lists() {
    let e = env_with(|p| p.set("acceptable_peer_addresses", "198.18.1.0/24").unwrap());
    let mut mem = SaMemory::default();
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let m = msg(
        Exchange::Informational,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut t = MobikeTask::new(false);
    let mut out = Vec::new();
    t.process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
    assert!(updates(&out).is_empty());
    let mut resp = Vec::new();
    let r = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        &[],
    );
    t.build(&sa(&[], &[], &[]), &r, &mut mem, &e, &mut resp);
    assert_eq!(notifies(&resp), [NotifyType::UnacceptableAddresses]);
    // lists keep only acceptable addresses
    let n = [
        raw(NotifyType::AdditionalIp4Address, &[198, 18, 1, 7]),
        raw(NotifyType::AdditionalIp4Address, &[198, 18, 9, 9]),
    ];
    let m = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    let mut out = Vec::new();
    MobikeTask::new(false).process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
    let kept: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::AddPeerAddress(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(kept, ["198.18.1.2:4500", "198.18.1.7:0"]);
}

#[test]
fn a_move_onto_a_path_that_cannot_carry_ike_is_refused() {
    // Found by fuzz/fuzz_targets/exchange.rs: an UPDATE_SA_ADDRESSES
    // from the peer's virtual IP (through the tunnel) was accepted and
    // the return routability check sent into the tunnel.
    let vips: [IpAddr; 1] = ["198.18.100.1".parse().unwrap()];
    let mut s = sa(&[], &[], &[]);
    s.peer_vips = &vips;
    let n = [
        raw(NotifyType::UpdateSaAddresses, &[]),
        raw(NotifyType::Cookie2, &[7; 16]),
    ];
    let m = msg(
        Exchange::Informational,
        "198.18.100.1:4500",
        "198.18.1.2:4500",
        &n,
    );
    let mut mem = SaMemory::default();
    let mut t = MobikeTask::new(false);
    let mut out = Vec::new();
    t.process(&s, &m, &mut mem, &env(), &mut out);
    assert!(updates(&out).is_empty(), "{out:?}");
    assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
    assert!(mem.return_routability_pending.is_none());
    assert!(out.contains(&Action::Log {
        level: 1,
        text: "path 198.18.1.2[4500] - 198.18.100.1[4500] is not acceptable (virtual IP), answering UNACCEPTABLE_ADDRESSES".into()
    }));
    let mut resp = Vec::new();
    let r = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.100.1:4500",
        &[],
    );
    t.build(&s, &r, &mut mem, &env(), &mut resp);
    assert!(notifies(&resp).contains(&NotifyType::UnacceptableAddresses));
    // Nor does an original initiator follow a peer whose address list
    // comes from there.
    s.original_initiator = true;
    let n = [raw(NotifyType::AdditionalIp4Address, &[198, 18, 3, 1])];
    let m = msg(
        Exchange::Informational,
        "198.18.100.1:4500",
        "198.18.1.2:4500",
        &n,
    );
    let mut out = Vec::new();
    MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert!(updates(&out).is_empty(), "{out:?}");
}
