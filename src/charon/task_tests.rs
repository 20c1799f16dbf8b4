//! Tests of the adapter without root and without a daemon: the fake
//! strongSwan world of [`crate::charon::fake`] (an IKE_SA, CHILD_SAs and
//! tasks, the kernel interface, socket, sender, scheduler, processor and
//! IKE_SA manager behind libcharon's real `charon` and `lib` globals),
//! charon's own messages, packets, lists and hosts (the test binary links
//! libcharon), driven through the real `ike_mobike_t` methods.
//!
//! charon's globals are process-wide: each test holds [`World`], which
//! sets them and lets one test at a time run. Unique IDs differ per test
//! (the registry is process-wide too).

use super::*;

use std::ffi::c_void;

use crate::charon::facts::{SaFacts, MAX_ROUTES, MAX_ROUTE_INTERFACES};
use crate::charon::fake::*;
use crate::charon::iface::IfaceInfo;
use crate::mobike::NotifyType;

// ---- the tests -----------------------------------------------------------

const AUTH: sys::ike_condition_t = sys::COND_AUTHENTICATED;
const ORIG: sys::ike_condition_t = sys::COND_ORIGINAL_INITIATOR;

#[test]
fn the_object_has_the_built_in_layout_and_type() {
    let _w = World::new();
    let mut rw = FakeIkeSa::new(9001, "198.18.2.2:4500", "198.18.1.1:4500", ORIG);
    let t = Methods::new(&mut rw, true, lookups(None));
    assert_eq!(t.get_type(), sys::TASK_IKE_MOBIKE);
    t.roam(false);
    // what the built-in task reads of a queued TASK_IKE_MOBIKE
    // SAFETY: the prefix both layouts share (asserted at compile time).
    let prefix = unsafe { &*t.0.cast::<BuiltinPrefix>() };
    assert!(prefix.check && prefix.update && prefix.initiator);
    assert_eq!(prefix.ike_sa, rw.ptr());
    t.destroy();
}

#[test]
fn ike_auth_negotiates_mobike_in_both_roles() {
    let mut w = World::new();
    let l = lookups(Some(1));
    let mut rw = FakeIkeSa::new(9101, "198.18.2.2:4500", "198.18.1.1:4500", ORIG);
    let mut gw = FakeIkeSa::new(9102, "198.18.1.1:4500", "198.18.2.2:4500", 0);
    let rw_task = Methods::new(&mut rw, true, l);
    let gw_task = Methods::new(&mut gw, false, l);

    // the road warrior's IKE_AUTH request: MOBIKE_SUPPORTED and its other
    // address (RFC 4555 3.2, 3.4)
    w.kernel(
        &["198.18.2.2", "198.18.3.2"],
        &[("198.18.1.1", "198.18.2.2")],
        &[("198.18.2.2", "eth1"), ("198.18.3.2", "eth2")],
    );
    let req = message(sys::IKE_AUTH, "198.18.2.2:4500", "198.18.1.1:4500", 1, true);
    assert_eq!(rw_task.build(req), sys::NEED_MORE);
    let sent = notify_types(req);
    assert!(
        sent.contains(&(NotifyType::MobikeSupported as u16)),
        "{sent:?}"
    );
    assert!(
        sent.contains(&(NotifyType::AdditionalIp4Address as u16)),
        "{sent:?}"
    );
    assert_eq!(rw_task.ours().mid, Some(1));
    assert_eq!(
        remembered(9101),
        None,
        "nothing stored before authentication"
    );

    // the gateway processes it, then answers once authenticated
    w.kernel(
        &["198.18.1.1"],
        &[("198.18.2.2", "198.18.1.1")],
        &[("198.18.1.1", "eth1")],
    );
    assert_eq!(gw_task.process(req), sys::NEED_MORE);
    let ext = format!("enable_extension {}", sys::EXT_MOBIKE);
    assert!(gw.calls.contains(&ext), "{:?}", gw.calls);
    assert!(
        gw.calls
            .contains(&"add_peer_address 198.18.3.2:0".to_string()),
        "{:?}",
        gw.calls
    );
    assert_eq!(remembered(9102), None, "the half-open IKE_SA has no memory");
    gw.conditions |= AUTH as u32;
    let resp = message(
        sys::IKE_AUTH,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        1,
        false,
    );
    assert_eq!(gw_task.build(resp), sys::SUCCESS);
    assert!(notify_types(resp).contains(&(NotifyType::MobikeSupported as u16)));
    assert_eq!(remembered(9102), Some(false), "a responder's is not polled");

    // the road warrior processes the answer: MOBIKE is on, its memory
    // starts (it is polled for liveness as original initiator)
    rw.conditions |= AUTH as u32;
    w.kernel(&["198.18.2.2", "198.18.3.2"], &[], &[]);
    assert_eq!(rw_task.process(resp), sys::SUCCESS);
    assert!(rw.calls.contains(&ext), "{:?}", rw.calls);
    assert_eq!(remembered(9101), Some(true));

    destroy_message(req);
    destroy_message(resp);
    rw_task.destroy();
    gw_task.destroy();
    registry::forget(9101);
    registry::forget(9102);
}

#[test]
fn a_responder_follows_an_update_with_the_messages_own_hosts() {
    let mut w = World::new();
    let mut l = FakeLookups::default();
    l.oif.insert((ip("198.18.2.2"), ip("198.18.1.1")), 2);
    l.ifaces.insert(
        2,
        IfaceInfo {
            name: "eth2".into(),
            tunnel: false,
        },
    );
    let l = keep(l);
    // a gateway's childless IKE_SA: moves without a return routability
    // check, which follows when its first CHILD_SA comes up
    let mut gw = FakeIkeSa::new(9201, "198.18.1.1:4500", "198.18.1.2:4500", AUTH);
    gw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(
        &["198.18.1.1"],
        &[("198.18.2.2", "198.18.1.1")],
        &[("198.18.1.1", "eth1")],
    );
    let t = Methods::new(&mut gw, false, l);

    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        3,
        true,
    );
    add_notify(req, NotifyType::UpdateSaAddresses, &[]);
    assert_eq!(t.process(req), sys::NEED_MORE);
    let update = format!(
        "update_hosts 198.18.1.1:4500 198.18.2.2:4500 {}",
        sys::UPDATE_HOSTS_FORCE_ALL
    );
    assert!(gw.calls.contains(&update), "{:?}", gw.calls);
    // SAFETY: our message.
    let (dst, src) = unsafe { (call!(req, get_destination), call!(req, get_source)) };
    assert_eq!(
        gw.updated_with,
        Some((dst, src)),
        "the message's hosts, not copies"
    );

    // the answer is built without reading the IKE_SA
    let reads = gw.host_reads;
    let resp = message(
        sys::INFORMATIONAL,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        3,
        false,
    );
    assert_eq!(t.build(resp), sys::SUCCESS);
    assert_eq!(gw.host_reads, reads);

    destroy_message(req);
    destroy_message(resp);
    t.destroy();
    registry::forget(9201);
}

#[test]
fn transmit_sends_copies_on_the_paths_the_core_chose() {
    let mut w = World::new();
    let l = lookups(Some(3));
    let mut rw = FakeIkeSa::new(9301, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    rw.add_peer("198.18.1.1:4500");
    rw.add_peer("198.18.3.1:4500");

    // while the current path routes, a first transmission goes there
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, l);
    let p = packet();
    assert!(t.transmit(p));
    assert_eq!(
        w.sender.sent,
        [(sa("198.18.2.2:4500"), sa("198.18.1.1:4500"))]
    );
    w.sender.sent.clear();
    t.destroy();

    // probing after rw's address went away: every routed path, from the
    // address left (RFC 4555 3.5)
    w.kernel(
        &["198.18.4.2"],
        &[("198.18.1.1", "198.18.4.2"), ("198.18.3.1", "198.18.4.2")],
        &[("198.18.4.2", "eth3")],
    );
    let t = Methods::new(&mut rw, true, l);
    t.enable_probing();
    assert!(t.is_probing());
    assert!(t.transmit(p));
    let mut dsts: Vec<_> = w.sender.sent.iter().map(|(s, d)| (s.ip(), *d)).collect();
    dsts.sort();
    assert_eq!(
        dsts,
        [
            (ip("198.18.4.2"), sa("198.18.1.1:4500")),
            (ip("198.18.4.2"), sa("198.18.3.1:4500")),
        ],
        "{:?}",
        take_log()
    );
    // SAFETY: the original stays ours.
    unsafe { call!(p, destroy) };
    t.destroy();
    registry::forget(9301);
}

#[test]
fn the_message_route_never_pushes_the_routes_past_their_bound() {
    // 16 peer addresses (max_peer_addresses' default) and four local
    // addresses of one family give 16 + 16 * 3 = 64 routes; an earlier C
    // boundary wrote the route towards the message's source ahead of them
    // and the 65th interface past its array, over the virtual IPs.
    let mut w = World::new();
    let l = lookups(Some(1));
    let mut rw = FakeIkeSa::new(9401, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    let peers: Vec<String> = (1..=16).map(|i| format!("198.19.0.{i}")).collect();
    for p in &peers {
        rw.add_peer(&format!("{p}:4500"));
    }
    // SAFETY: our list takes the host.
    unsafe { call!(rw.my_vips, insert_last, host("198.18.100.1:0").cast()) };
    let locals = ["198.18.2.2", "198.18.3.2", "198.18.4.2", "198.18.5.2"];
    let sources: Vec<(&str, &str)> = peers.iter().map(|p| (p.as_str(), "198.18.2.2")).collect();
    w.kernel(&locals, &sources, &[]);

    // as process() gathers for an INFORMATIONAL request from another path,
    // then the core asks for the routes
    let ike = rw.ike();
    let mut facts = SaFacts::basic(ike);
    let filter = ViewNeeds {
        filter: true,
        ..ViewNeeds::default()
    };
    facts.add(ike, filter, l);
    let (msg_src, msg_dst) = (ip("198.18.9.9"), ip("198.18.2.2"));
    facts.add_message_route(msg_src, msg_dst, l);
    let routes = ViewNeeds {
        routes: true,
        ..ViewNeeds::default()
    };
    facts.add(ike, routes, l);

    let v = facts.view();
    assert_eq!(v.peer_addresses.len(), 16);
    assert_eq!(v.routes.len(), MAX_ROUTES);
    assert!(v.route_interfaces.len() <= MAX_ROUTE_INTERFACES);
    assert_eq!(v.route_interfaces.len(), MAX_ROUTES + 1);
    // every interface fact is a route's or the message's
    for f in v.route_interfaces {
        assert!(
            f.addr == msg_src || v.routes.iter().any(|r| r.dst == f.addr),
            "{f:?}"
        );
    }
    assert_eq!(
        v.route_interfaces
            .iter()
            .filter(|f| f.addr == msg_src)
            .count(),
        1
    );
    // every route is a peer address's, from one of our addresses
    for r in v.routes {
        assert!(peers.iter().any(|p| ip(p) == r.dst), "{r:?}");
        assert!(
            r.src.is_some_and(|s| locals.iter().any(|l| ip(l) == s)),
            "{r:?}"
        );
    }
    assert_eq!(
        v.my_vips,
        [ip("198.18.100.1")],
        "the virtual IPs are intact"
    );

    // more local addresses than fit: still the bound, nothing past it
    let many: Vec<String> = (2..=20).map(|i| format!("198.18.{i}.2")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    w.kernel(&many, &sources, &[]);
    let mut facts = SaFacts::basic(ike);
    facts.add_message_route(msg_src, msg_dst, l);
    facts.add(ike, routes, l);
    let v = facts.view();
    assert_eq!(v.routes.len(), MAX_ROUTES);
    assert!(v.route_interfaces.len() <= MAX_ROUTE_INTERFACES);
}

#[test]
fn too_many_peer_addresses_are_left_out_at_the_bound() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9501, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    for i in 1..=40 {
        rw.add_peer(&format!("198.19.1.{i}:4500"));
    }
    w.kernel(&["198.18.2.2"], &[], &[]);
    let ike = rw.ike();
    let facts = crate::charon::facts::gather_with(
        ike,
        ViewNeeds {
            peers: true,
            ..ViewNeeds::default()
        },
        lookups(None),
    );
    assert_eq!(
        facts.view().peer_addresses.len(),
        crate::charon::facts::MAX_PEER_ADDRESSES
    );
}

#[test]
fn a_panic_fails_the_task_and_transmit_falls_back_to_the_current_path() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9601, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, lookups(None));
    t.roam(false);
    // a broken object: the adapter's call panics inside the boundary
    rw.public.get_ike_cfg = None;
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        5,
        true,
    );
    assert_eq!(
        t.build(req),
        sys::SUCCESS,
        "the task ends, the IKE_SA stays"
    );
    assert!(t.ours().failed);
    assert!(boundary::fallback_active());
    assert!(!t.is_probing());
    // SAFETY: the prefix both layouts share.
    let prefix = unsafe { &*t.0.cast::<BuiltinPrefix>() };
    assert!(!prefix.check && !prefix.update);
    assert!(rw.calls.is_empty(), "nothing changed: {:?}", rw.calls);
    let p = packet();
    assert!(t.transmit(p));
    assert_eq!(
        w.sender.sent,
        [(sa("198.18.2.2:4500"), sa("198.18.1.1:4500"))]
    );
    assert_eq!(t.process(req), sys::SUCCESS);
    // SAFETY: ours.
    unsafe { call!(p, destroy) };
    destroy_message(req);
    t.destroy();
}

#[test]
fn the_rekeyings_of_a_move_wait_for_the_peers_and_then_only_what_is_left() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9701, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    rw.requeue_on_update = true;
    rw.add_child(0xc1, 7, "net");
    rw.add_child(0xc2, 8, "lan");
    w.manager.sas.push(&mut *rw);
    // SAFETY: our list takes the task (a rekeying queued before the move).
    unsafe {
        call!(
            rw.queued,
            insert_last,
            other_task(sys::TASK_CHILD_REKEY).cast()
        )
    };
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };

    // the core's move: its rekeyings leave the queue
    task.actions = vec![
        Action::DeferChildRekeys { ms: 5 },
        Action::UpdateHosts {
            me: Some(sa("198.18.3.2:4500")),
            other: None,
            force: UpdateForce::All,
            reason: crate::mobike::UpdateReason::PathCheckAnswered,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        rw.queued_types(),
        [sys::TASK_CHILD_REKEY],
        "the one from before stays"
    );
    assert_eq!(
        take_log(),
        [
            "the kernel did not update 2 CHILD_SA(s) in place; rekeying them after this exchange \
          unless the peer rekeys them first"
        ]
    );
    // the NAT update after the exchange: its rekeyings leave too
    task.actions = vec![
        Action::DeferChildRekeys { ms: 9 },
        Action::UpdateHosts {
            me: None,
            other: None,
            force: UpdateForce::Children,
            reason: crate::mobike::UpdateReason::NatStateAfterUpdate,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(rw.queued_types(), [sys::TASK_CHILD_REKEY]);

    // the task ends; the peer rekeyed "lan" meanwhile
    t.destroy();
    rw.children[1].state = sys::CHILD_REKEYED;
    take_log();
    assert_eq!(w.run_jobs(), [9]);
    assert_eq!(
        take_log(),
        [
            "rekeying CHILD_SA net{7}: the peer did not rekey it after the move",
            "the peer rekeyed 1 CHILD_SA(s) after the move, not rekeying them again",
        ]
    );
    let rekeys: Vec<_> = rw.calls.iter().filter(|c| c.starts_with("rekey")).collect();
    assert_eq!(rekeys, [&format!("rekey_child_sa {} 0xc1", sys::PROTO_ESP)]);
}

#[test]
fn an_update_in_place_defers_no_rekeying() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9801, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.add_child(0xc1, 7, "net");
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };
    task.actions = vec![
        Action::DeferChildRekeys { ms: 5 },
        Action::UpdateHosts {
            me: Some(sa("198.18.3.2:4500")),
            other: None,
            force: UpdateForce::All,
            reason: crate::mobike::UpdateReason::PathCheckAnswered,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    t.destroy();
    assert!(w.run_jobs().is_empty());
    assert!(take_log().is_empty());
}

#[test]
fn a_child_sa_the_kernel_did_not_move_in_place_is_rekeyed_and_the_ike_sa_kept() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9811, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.add_child(0xc1, 7, "net");
    rw.add_child(0xc2, 8, "lan");
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // the kernel took the first CHILD_SA's SAs to the new path, not the
    // second's (strongSwan before 6.1.0 ignores that)
    w.kernel.sa_gone.push(0xc2);
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };
    task.actions = vec![Action::UpdateHosts {
        me: None,
        other: Some(sa("198.18.3.1:4500")),
        force: UpdateForce::All,
        reason: crate::mobike::UpdateReason::PeerUpdate,
    }];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    t.destroy();
    // both inbound SAs were looked for where they should be now
    let me = sa("198.18.2.2:4500");
    assert_eq!(w.kernel.queried, [(0xc1, me), (0xc2, me)]);
    assert!(rw
        .calls
        .contains(&format!("rekey_child_sa {} {:#x}", sys::PROTO_ESP, 0xc2)));
    assert!(!rw
        .calls
        .iter()
        .any(|c| c.contains("rekey_child_sa") && c.contains("0xc1")));
    assert!(
        !rw.calls.iter().any(|c| c.contains("delete")),
        "the IKE_SA stays: {:?}",
        rw.calls
    );
    let log = take_log();
    assert!(
        log.iter()
            .any(|l| l.contains("the kernel did not move CHILD_SA lan{8} to the new path")),
        "{log:?}"
    );
}

#[test]
fn queue_mobike_reuses_the_queued_task_and_kick_retransmits_ours() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9901, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    let ike = rw.ike();
    queue_mobike(ike, false, false);
    queue_mobike(ike, true, false);
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
    assert_eq!(w.processor.queued, 2, "an initiate job each time");
    assert!(
        newer_update_queued(ike),
        "the roam made the queued one check"
    );

    // nothing active: no kick
    assert!(!kick(ike, true));
    // our task active, with the message ID of its request
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, lookups(None));
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        6,
        true,
    );
    t.build(req);
    destroy_message(req);
    // SAFETY: the active list takes the task (destroyed with the IKE_SA).
    unsafe { call!(rw.active, insert_last, t.task().cast()) };
    assert!(kick(ike, true));
    assert_eq!(w.processor.queued, 2, "a dry run queues nothing");
    assert!(!t.is_probing());
    assert!(kick(ike, false));
    assert!(t.is_probing());
    assert_eq!(w.processor.queued, 3, "the retransmit job");

    // a task that is not ours is never kicked
    let other = other_task(sys::TASK_IKE_MOBIKE);
    // SAFETY: as above.
    unsafe {
        let mut item: *mut c_void = std::ptr::null_mut();
        call!(rw.active, remove_first, &mut item);
        call!(rw.active, insert_last, other.cast());
    }
    assert!(!kick(ike, false));
    // SAFETY: removed from the list above, destroyed once here.
    unsafe { call!(t.task(), destroy) };
    registry::forget(9901);
}

#[test]
fn queue_mobike_after_checks_the_ike_sa_out_when_its_time_comes() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9951, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    w.manager.sas.push(&mut *rw);
    let ike = rw.ike();
    queue_mobike_after(ike, 500);
    assert!(rw.queued_types().is_empty());
    assert_eq!(w.run_jobs(), [500]);
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
    // gone by then: nothing
    rw.state = sys::IKE_DELETING;
    queue_mobike_after(ike, 500);
    w.run_jobs();
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
}

#[test]
fn half_open_ike_sas_store_no_memory() {
    // IKE_AUTH requests of IKE_SAs not yet authenticated (an
    // IKE_SA_INIT flood) must not fill the registry
    let mut w = World::new();
    w.kernel(&["198.18.1.1"], &[], &[("198.18.1.1", "eth1")]);
    let l = lookups(Some(1));
    let mut gw = FakeIkeSa::new(0, "198.18.1.1:4500", "198.18.2.2:4500", 0);
    let req = message(sys::IKE_AUTH, "198.18.2.2:4500", "198.18.1.1:4500", 1, true);
    add_notify(req, NotifyType::MobikeSupported, &[]);
    for id in 20_000..22_000 {
        gw.unique_id = id;
        gw.extensions = 0;
        let t = Methods::new(&mut gw, false, l);
        assert_eq!(t.process(req), sys::NEED_MORE);
        t.destroy();
        assert_eq!(remembered(id), None);
    }
    destroy_message(req);
}

#[test]
fn a_request_to_another_local_address_is_followed_there() {
    let mut w = World::new();
    let l = lookups(Some(2));
    let mut gw = FakeIkeSa::new(9961, "198.18.1.1:4500", "198.18.1.2:4500", AUTH);
    gw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(
        &["198.18.1.1", "198.18.1.5"],
        &[("198.18.2.2", "198.18.1.5")],
        &[("198.18.1.1", "eth1"), ("198.18.1.5", "eth2")],
    );
    let t = Methods::new(&mut gw, false, l);
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.5:4500",
        4,
        true,
    );
    add_notify(req, NotifyType::UpdateSaAddresses, &[]);
    // more notifies than are held inline
    for _ in 0..20 {
        add_notify(req, NotifyType::AdditionalIp4Address, &[198, 18, 2, 2]);
    }
    assert_eq!(t.process(req), sys::NEED_MORE);
    let update = format!(
        "update_hosts 198.18.1.5:4500 198.18.2.2:4500 {}",
        sys::UPDATE_HOSTS_FORCE_ALL
    );
    assert!(
        gw.calls.contains(&update),
        "{:?} {:?}",
        gw.calls,
        take_log()
    );
    destroy_message(req);
    t.destroy();
    registry::forget(9961);
}
