//! Tests of where requests go (`task::paths`): transmit, path checks,
//! the one path left, `preference` and `switch_back_delay` (RFC 4555 3.10),
//! and the return routability check's path.

use super::*;

/// A roam's request on 198.18.1.2 - 198.18.1.1; the kernel sends to the
/// gateway from `route_src` (198.18.2.2: rw-a lost its route), and
/// `routes` of the view are the pairs it routes.
fn roam_request(
    s: &SaView<'_>,
    mem: &mut SaMemory,
    route_src: &str,
) -> (MobikeTask, Status, Vec<Action>) {
    let mut t = MobikeTask::new(true);
    t.roam(false);
    let mut m = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    m.route_src = Some(route_src.parse().unwrap());
    let mut out = Vec::new();
    let status = t.build(s, &m, mem, &env(), &mut out);
    (t, status, out)
}

#[test]
fn the_only_path_left_is_taken_without_a_check() {
    let peers: [SocketAddr; 1] = ["198.18.1.1:4500".parse().unwrap()];
    let route = |src: &str| Route {
        dst: peers[0].ip(),
        src: Some(src.parse().unwrap()),
    };
    let new: SocketAddr = "198.18.2.2:4500".parse().unwrap();
    // One routed pair: the IKE_SA moves at once and the request is the
    // update, from the new address, with NAT-D and COOKIE2.
    let routes = [route("198.18.2.2")];
    let mut s = sa(&peers, &[], &routes);
    s.route_current = Some(new.ip());
    let mut mem = SaMemory::default();
    let (mut t, status, out) = roam_request(&s, &mut mem, "198.18.2.2");
    assert_eq!(status, Status::NeedMore);
    assert!(!t.is_probing(), "no check, no probing retransmits");
    let moved_at = out
        .iter()
        .position(|a| {
            *a == Action::UpdateHosts {
                me: Some(new),
                other: None,
                force: UpdateForce::All,
                reason: UpdateReason::OnlyPathLeft,
            }
        })
        .expect("the move");
    // Its rekeyings wait for the peer's, and the adapter must know before
    // the move (it sees what update_hosts() queues).
    assert_eq!(
        action_before(&out, moved_at),
        Some(&Action::DeferChildRekeys {
            ms: CHILD_REKEY_DEFER_MS
        })
    );
    assert!(out.contains(&Action::SetSource(new)));
    let n = notifies(&out);
    for ty in [
        NotifyType::UpdateSaAddresses,
        NotifyType::Cookie2,
        NotifyType::NatDetectionSourceIp,
        NotifyType::NatDetectionDestinationIp,
    ] {
        assert!(n.contains(&ty), "{ty:?} in {n:?}");
    }
    // Sent once, on the path the IKE_SA now has.
    let mut moved = s.clone();
    moved.my_host = new;
    let mut sent = Vec::new();
    assert!(t.transmit(&moved, &mut mem, &Policy::default(), &mut sent));
    assert_eq!(
        sent.iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .collect::<Vec<_>>(),
        [&Action::Send {
            src: new,
            dst: peers[0]
        }]
    );

    // Two routed pairs: a check decides, nothing moves before it.
    let two = [route("198.18.2.2"), route("198.18.3.3")];
    let s = sa(&peers, &[], &two);
    let (t, _, out) = roam_request(&s, &mut SaMemory::default(), "198.18.2.2");
    assert!(t.is_probing());
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    assert!(!notifies(&out).contains(&NotifyType::UpdateSaAddresses));

    // The current path still routes: a check (another path may be
    // better, or the peer may have moved).
    let same = [route("198.18.1.2"), route("198.18.2.2")];
    let s = sa(&peers, &[], &same);
    let (t, _, out) = roam_request(&s, &mut SaMemory::default(), "198.18.1.2");
    assert!(t.is_probing());
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));

    // A path the peer refused lately is no candidate: nothing is left
    // to move to, the check runs (and finds nothing).
    let mut mem = SaMemory::default();
    mem.reject_path(
        Path {
            local: new,
            remote: peers[0],
        },
        0,
    );
    let s = sa(&peers, &[], &routes);
    let (t, _, out) = roam_request(&s, &mut mem, "198.18.2.2");
    assert!(t.is_probing());
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
}

#[test]
fn transmit_uses_the_current_path_while_it_routes() {
    let s = sa(&[], &[], &[]);
    let mut out = Vec::new();
    assert!(MobikeTask::new(true).transmit(
        &s,
        &mut SaMemory::default(),
        &Policy::default(),
        &mut out
    ));
    assert_eq!(
        out,
        [Action::Send {
            src: s.my_host,
            dst: s.other_host
        }]
    );
}

#[test]
fn transmit_probes_every_routable_peer_address() {
    let peers: Vec<SocketAddr> = vec![
        "198.18.1.1:4500".parse().unwrap(),
        "198.18.3.1:0".parse().unwrap(),
        "2001:db8::1"
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, 0))
            .unwrap(),
    ];
    let routes = [
        Route {
            dst: peers[0].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
        Route {
            dst: peers[1].ip(),
            src: None,
        },
        Route {
            dst: peers[2].ip(),
            src: Some("2001:db8::2".parse().unwrap()),
        },
    ];
    let mut s = sa(&peers, &[], &routes);
    s.route_current = Some("198.18.2.2".parse().unwrap()); // rw-a is gone
    let mut t = MobikeTask::new(true);
    let mut out = Vec::new();
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert!(t.is_probing());
    let sends: Vec<_> = out
        .iter()
        .filter(|a| matches!(a, Action::Send { .. }))
        .cloned()
        .collect();
    assert_eq!(
        sends,
        [
            Action::Send {
                src: "198.18.2.2:4500".parse().unwrap(),
                dst: "198.18.1.1:4500".parse().unwrap()
            },
            Action::Send {
                src: "[2001:db8::2]:4500".parse().unwrap(),
                dst: "[2001:db8::1]:4500".parse().unwrap()
            },
        ]
    );
    // IPv4-only socket: the IPv6 path is not tried
    s.families = Families {
        v4: true,
        v6: false,
    };
    out.clear();
    t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .count(),
        1
    );
    // nothing routable: no path
    let none = [Route {
        dst: peers[0].ip(),
        src: None,
    }];
    let s = sa(&peers[..1], &[], &none);
    out.clear();
    let mut t = MobikeTask::new(true);
    t.enable_probing();
    // the first transmission goes to the current path rather than
    // report no path (charon would end the IKE_SA); retransmissions
    // are deferred
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert_eq!(
        self::sends(&out),
        [(s.my_host.to_string(), s.other_host.to_string())]
    );
    out.clear();
    assert!(!t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
}

#[test]
fn a_check_while_the_current_path_routes_goes_to_the_best_path_first() {
    // rw is on rw-b (198.18.2.2), which still routes the gateway; the
    // kernel prefers rw-a (198.18.1.2) again (prefer_best_path).
    let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
    let locals = [ip("198.18.1.2"), ip("198.18.2.2")];
    let routes = [
        Route {
            dst: peers[0].ip(),
            src: Some(ip("198.18.1.2")),
        },
        Route {
            dst: peers[0].ip(),
            src: Some(ip("198.18.2.2")),
        },
    ];
    let mut s = sa(&peers, &locals, &routes);
    s.my_host = "198.18.2.2:4500".parse().unwrap();
    s.route_current = Some(ip("198.18.2.2"));
    let best = pair("198.18.1.2:4500", "198.18.1.1:4500");
    let current = pair("198.18.2.2:4500", "198.18.1.1:4500");
    let transmit = |t: &mut MobikeTask, s: &SaView<'_>| {
        let mut out = Vec::new();
        assert!(t.transmit(s, &mut SaMemory::default(), &Policy::default(), &mut out));
        self::sends(&out)
    };

    // the first copy goes where the kernel prefers, so the answer on
    // the other path cannot win a race; unanswered, it goes everywhere
    let mut t = MobikeTask::new(true);
    t.roam(false);
    assert_eq!(transmit(&mut t, &s), [best.clone()]);
    assert!(t.is_probing());
    assert_eq!(transmit(&mut t, &s), [best.clone(), current.clone()]);

    // our liveness rule (or a DPD) doubts the current path: every
    // path at once
    let mut t = MobikeTask::new(true);
    t.roam(false);
    t.dpd(false);
    assert_eq!(transmit(&mut t, &s), [best.clone(), current.clone()]);

    // the current path lost its route: every path at once
    s.route_current = Some(ip("198.18.1.2"));
    let mut t = MobikeTask::new(true);
    t.roam(false);
    assert_eq!(transmit(&mut t, &s), [best, current]);
}

#[test]
fn the_return_routability_check_never_goes_where_ike_cannot() {
    // Found by fuzz/fuzz_targets/exchange.rs: the check was sent to an
    // address that had become the peer's virtual IP since the update.
    let e = env();
    let mut mem = SaMemory::default();
    let (_, out) = peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
    assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
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
    t.build(&s, &req, &mut mem, &e, &mut out);
    let cookie = data_of(&out, NotifyType::Cookie2);
    let vips: [IpAddr; 1] = ["198.18.2.2".parse().unwrap()];
    s.peer_vips = &vips;
    out.clear();
    // the request no longer checks anything: it goes where the IKE_SA
    // is (the first transmission never says "no path": charon would
    // end the IKE_SA), never to the virtual IP, and its answer moves
    // nothing
    assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
    assert!(out.contains(&Action::Log {
        level: 1,
        text: "not checking return routability of 198.18.2.2[4500] (virtual IP)".into()
    }));
    assert_eq!(
        self::sends(&out),
        [("198.18.1.1:4500".to_string(), "198.18.1.2:4500".to_string())]
    );
    let n = [raw(NotifyType::Cookie2, &cookie)];
    let resp = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &n,
    );
    out.clear();
    assert_eq!(
        t.process(&s, &resp, &mut mem, &e, &mut out),
        Status::Success
    );
    assert!(updates(&out).is_empty(), "{out:?}");
}

#[test]
fn transmit_does_not_probe_into_the_tunnel() {
    let peers: Vec<SocketAddr> = [
        "198.18.1.1:4500", // current
        "198.18.100.1:0",  // the gateway's LAN, inside the remote TS
        "198.18.200.9:0",  // the peer's virtual IP
        "[fe80::1]:0",     // link-local
        "198.18.9.1:0",    // reachable only through xfrm0
        "198.18.5.1:0",    // a real second address
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let routes: Vec<Route> = peers
        .iter()
        .map(|p| Route {
            dst: p.ip(),
            src: Some(if p.is_ipv4() {
                ip("198.18.2.2")
            } else {
                ip("fe80::2")
            }),
        })
        .collect();
    let ts = [range("198.18.100.0", "198.18.100.255")];
    let vips = [ip("198.18.200.9")];
    let via = [on("198.18.9.1", "xfrm0", true)];
    let mut s = sa(&peers, &[], &routes);
    s.route_current = None; // the current path lost its route
    s.remote_ts = &ts;
    s.peer_vips = &vips;
    s.route_interfaces = &via;
    let mut out = Vec::new();
    let mut t = MobikeTask::new(true);
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    let sends: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send { dst, .. } => Some(dst.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(sends, ["198.18.1.1:4500", "198.18.5.1:4500"]);
    let skipped: Vec<_> = logs(&out, 2)
        .into_iter()
        .filter(|l| l.starts_with("not probing"))
        .collect();
    assert_eq!(
        skipped,
        [
            "not probing paths 198.18.2.2 - 198.18.100.1 (inside traffic selector \
          198.18.100.0..198.18.100.255), 198.18.2.2 - 198.18.200.9 (virtual IP), \
          fe80::2 - fe80::1 (link-local), 198.18.2.2 - 198.18.9.1 (routed through \
          tunnel interface xfrm0)"
        ]
    );
    // nothing else left: no path found
    let mut s = sa(&peers[1..3], &[], &routes[1..3]);
    s.remote_ts = &ts;
    s.peer_vips = &vips;
    let mut t = MobikeTask::new(true);
    t.enable_probing();
    out.clear();
    // the first transmission goes to the current path rather than
    // report no path (charon would end the IKE_SA); retransmissions
    // are deferred
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert_eq!(
        self::sends(&out),
        [(s.my_host.to_string(), s.other_host.to_string())]
    );
    out.clear();
    assert!(!t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
}

#[test]
fn transmit_keeps_the_current_path_whatever_the_facts_say() {
    // The current path runs over an address inside the TS and an
    // interface called a tunnel: it works, so it stays a candidate.
    let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
    let routes = [Route {
        dst: peers[0].ip(),
        src: Some(ip("198.18.1.2")),
    }];
    let ts = [range("198.18.1.1", "198.18.1.1")];
    let via = [on("198.18.1.1", "ipsec0", true)];
    let mut s = sa(&peers, &[], &routes);
    s.remote_ts = &ts;
    s.route_interfaces = &via;
    let mut t = MobikeTask::new(true);
    t.enable_probing();
    let mut out = Vec::new();
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert!(out.contains(&Action::Send {
        src: s.my_host,
        dst: s.other_host
    }));
}

#[test]
fn a_retransmission_without_answer_checks_every_pair_the_kernel_routes() {
    let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
    // the kernel's first choice is rw-a; policy routing also carries
    // the gateway's address from rw-b
    let routes = [
        Route {
            dst: peers[0].ip(),
            src: Some("198.18.1.2".parse().unwrap()),
        },
        Route {
            dst: peers[0].ip(),
            src: Some("198.18.2.2".parse().unwrap()),
        },
    ];
    let s = sa(&peers, &[], &routes);
    let mut t = MobikeTask::new(true);
    let m = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    t.build(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
    let mut out = Vec::new();
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert_eq!(
        sends(&out).len(),
        1,
        "first transmission: the current path only"
    );
    assert!(!t.is_probing());
    out.clear();
    assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    assert!(t.is_probing());
    assert_eq!(
        sends(&out),
        [
            ("198.18.1.2:4500".to_string(), "198.18.1.1:4500".to_string()),
            ("198.18.2.2:4500".to_string(), "198.18.1.1:4500".to_string()),
        ]
    );
    // a new message starts counting again
    let mut t2 = MobikeTask::new(true);
    t2.build(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
    let mut out = Vec::new();
    t2.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
    assert_eq!(sends(&out).len(), 1);
}

// ---- preference and switch_back_delay (RFC 4555 3.10) ----

const RW_A: &str = "198.18.1.2:4500";
const RW_B: &str = "198.18.2.2:4500";
const GW: &str = "198.18.1.1:4500";

fn prefer_env() -> Env<'static> {
    env_with(|p| p.set("preference", "rw-a=100, rw-b=50").unwrap())
}

/// What the road warrior's core sees on rw-b with or without rw-a's
/// address: the kernel routes the gateway from rw-a first (its
/// connected route), and from rw-b too.
struct Lab {
    peers: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    routes: Vec<Route>,
    ifaces: Vec<crate::mobike::OnInterface>,
}

impl Lab {
    fn new(rw_a: bool) -> Self {
        let gw: SocketAddr = GW.parse().unwrap();
        let mut locals = vec![ip("198.18.2.2")];
        let mut routes = vec![];
        if rw_a {
            locals.insert(0, ip("198.18.1.2"));
            routes.push(Route {
                dst: gw.ip(),
                src: Some(ip("198.18.1.2")),
            });
        }
        routes.push(Route {
            dst: gw.ip(),
            src: Some(ip("198.18.2.2")),
        });
        Lab {
            peers: vec![gw],
            locals,
            routes,
            ifaces: vec![
                on("198.18.1.2", "rw-a", false),
                on("198.18.2.2", "rw-b", false),
            ],
        }
    }

    fn view(&self, now_ms: u64) -> SaView<'_> {
        let mut s = sa(&self.peers, &self.locals, &self.routes);
        s.my_host = RW_B.parse().unwrap();
        s.route_current = Some(ip("198.18.2.2"));
        s.local_interfaces = &self.ifaces;
        s.now_ms = now_ms;
        s
    }
}

fn info_from_b() -> Message<'static> {
    msg(Exchange::Informational, RW_B, GW, &[])
}

/// A request of the original initiator built and sent once: `list`
/// for charon's address list update, otherwise a plain one (the task
/// `QueueMobikeAfter` asks for, a DPD). Returns the task, the build's
/// log lines and the transmit's actions.
fn request(
    lab: &Lab,
    now: u64,
    list: bool,
    mem: &mut SaMemory,
    e: &Env<'_>,
) -> (MobikeTask, Vec<Action>) {
    let s = lab.view(now);
    let mut t = MobikeTask::new(true);
    if list {
        t.addresses();
    }
    let mut out = Vec::new();
    t.build(&s, &info_from_b(), mem, e, &mut out);
    out.retain(|a| matches!(a, Action::Log { .. }));
    assert!(t.transmit(&s, mem, &e.policy, &mut out));
    (t, out)
}

fn queued_after(out: &[Action]) -> Vec<u32> {
    out.iter()
        .filter_map(|a| match a {
            Action::QueueMobikeAfter { ms } => Some(*ms),
            _ => None,
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn a_better_path_is_tested_after_switch_back_delay_and_taken() {
    let e = prefer_env();
    let lab = Lab::new(true);
    let mut mem = SaMemory::default();
    // rw-a's address appears: charon's address list update goes out on
    // the current path, the test is asked for in 500 ms
    let (_, out) = request(&lab, 1000, true, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert_eq!(queued_after(&out), [500]);
    assert!(logs(&out, 1).contains(
        &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] available since 0 ms, testing in 500 ms"
    ));
    // before the delay: nothing is tested, nothing asked for again
    let (_, out) = request(&lab, 1300, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert!(queued_after(&out).is_empty());
    // after it: the plain request goes to rw-a only
    let (mut t, out) = request(&lab, 1500, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_A, GW)], "{out:?}");
    assert!(!t.is_probing());
    // rw-a answers: move there, UPDATE_SA_ADDRESSES follows on it
    let answer = msg(Exchange::Informational, GW, RW_A, &[]);
    let mut out = Vec::new();
    let s = lab.view(1501);
    assert_eq!(
        t.process(&s, &answer, &mut mem, &e, &mut out),
        Status::NeedMore
    );
    assert_eq!(
        updates(&out),
        [(UpdateForce::All, UpdateReason::PreferredPath)]
    );
    assert!(out.contains(&Action::UpdateHosts {
        me: Some(RW_A.parse().unwrap()),
        other: None,
        force: UpdateForce::All,
        reason: UpdateReason::PreferredPath,
    }));
    assert!(logs(&out, 1).contains(&"moving to preferred path 198.18.1.2[4500] - 198.18.1.1[4500]"));
    assert_eq!(mem.preferred, None);
    let mut out = Vec::new();
    let from_a = msg(Exchange::Informational, RW_A, GW, &[]);
    let mut on_a = lab.view(1502);
    on_a.my_host = RW_A.parse().unwrap();
    t.build(&on_a, &from_a, &mut mem, &e, &mut out);
    assert!(notifies(&out).contains(&NotifyType::UpdateSaAddresses));
    assert!(notifies(&out).contains(&NotifyType::Cookie2));
}

#[test]
fn a_link_flapping_faster_than_switch_back_delay_never_moves_the_ike_sa() {
    let e = prefer_env();
    let (up, down) = (Lab::new(true), Lab::new(false));
    let mut mem = SaMemory::default();
    let mut scheduled = Vec::new();
    let mut all = Vec::new();
    // (when, rw-a's address there, charon's address list update or
    // the plain task asked for)
    for (now, lab, list) in [
        (1000, &up, true),
        (1200, &down, true),
        (1300, &up, true),
        (1500, &up, false), // the first task asked for: not due any more
        (1700, &down, true),
        (1800, &down, false), // the second: rw-a is gone
        (2000, &up, true),
        (2400, &down, true),
        (2500, &down, false),
    ] {
        let (_, out) = request(lab, now, list, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)], "at {now}: {out:?}");
        scheduled.extend(queued_after(&out).into_iter().map(|ms| now + u64::from(ms)));
        all.extend(out);
    }
    assert_eq!(scheduled, [1500, 1800, 2500]);
    assert!(!all.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    assert!(logs(&all, 1).contains(
        &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] is gone, staying on 198.18.2.2[4500] - 198.18.1.1[4500]"
    ));
    assert_eq!(mem.preferred, None);
    // the build alone forgets it too (its exchange may be cancelled)
    let (_, _) = request(&up, 3000, true, &mut mem, &e);
    assert!(mem.preferred.is_some());
    let mut out = Vec::new();
    let mut t = MobikeTask::new(true);
    t.addresses();
    t.build(&down.view(3100), &info_from_b(), &mut mem, &e, &mut out);
    assert_eq!(mem.preferred, None);
}

/// rw-a's address came back at 1000 ms; at 1500 ms (switch_back_delay)
/// a request tests it, sent there only.
fn preferred_path_under_test() -> (Env<'static>, Lab, SaMemory, MobikeTask) {
    let e = prefer_env();
    let lab = Lab::new(true);
    let mut mem = SaMemory::default();
    request(&lab, 1000, true, &mut mem, &e);
    let (t, out) = request(&lab, 1500, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_A, GW)]);
    (e, lab, mem, t)
}

#[test]
fn a_preferred_path_that_does_not_answer_is_left_and_tested_again_later() {
    let (e, lab, mut mem, mut t) = preferred_path_under_test();
    // the first retransmission: the current path as well
    let mut out = Vec::new();
    assert!(t.transmit(&lab.view(5500), &mut mem, &e.policy, &mut out));
    assert_eq!(sends(&out), [pair(RW_A, GW), pair(RW_B, GW)]);
    assert!(!t.is_probing(), "not a check of all paths");
    assert!(logs(&out, 1).contains(
        &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] did not answer, sending on 198.18.2.2[4500] - 198.18.1.1[4500] as well"
    ));
    // the answer comes on the current path: stay
    let answer = msg(Exchange::Informational, GW, RW_B, &[]);
    let mut out = Vec::new();
    assert_eq!(
        t.process(&lab.view(5501), &answer, &mut mem, &e, &mut out),
        Status::Success
    );
    assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    assert_eq!(queued_after(&out), [10_000]);
    assert!(logs(&out, 1).contains(
        &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] did not answer, staying on 198.18.2.2[4500] - 198.18.1.1[4500]; testing it again in 10 s"
    ));
    // not tested again before the backoff, then tested
    let (_, out) = request(&lab, 9000, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert!(queued_after(&out).is_empty());
    let (_, out) = request(&lab, 15_501, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_A, GW)]);
    // a second failure doubles the backoff
    let p = mem.preferred.as_mut().unwrap();
    assert_eq!(p.failed(16_000), 20_000);
}

#[test]
fn a_preferred_path_the_filter_rules_out_since_is_not_sent_to_again() {
    // Found by the exchange fuzz target: a retransmission of a test
    // went to the preferred path after a virtual IP came to cover it.
    let (e, lab, mut mem, mut t) = preferred_path_under_test();
    let vips = [ip("198.18.1.2")];
    let mut covered = lab.view(5500);
    covered.my_vips = &vips;
    let mut out = Vec::new();
    assert!(t.transmit(&covered, &mut mem, &e.policy, &mut out));
    assert_eq!(sends(&out), [pair(RW_B, GW)], "{out:?}");
    assert!(logs(&out, 1).iter().any(|l| l
        .starts_with("not testing preferred path 198.18.1.2[4500] - 198.18.1.1[4500] any more")));
}

#[test]
fn a_due_test_never_rides_on_a_request_that_names_the_current_path() {
    // switch_back_delay = 0: the address list update that sees rw-a
    // goes out on the current path (its list and NO_NATS_ALLOWED name
    // rw-b); a request of its own tests rw-a at once
    let e = env_with(|p| {
        p.set("preference", "rw-a=100, rw-b=50").unwrap();
        p.set("switch_back_delay", "0").unwrap();
        p.nat_prohibition = true;
    });
    let lab = Lab::new(true);
    let mut mem = SaMemory::default();
    let (_, out) = request(&lab, 1000, true, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert_eq!(queued_after(&out), [0]);
    let (_, out) = request(&lab, 1001, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_A, GW)]);
    // the original responder never moves on its own (RFC 4555 3.1)
    let mut mem = SaMemory::default();
    let mut s = lab.view(1000);
    s.original_initiator = false;
    let mut t = MobikeTask::new(true);
    let mut out = Vec::new();
    t.build(&s, &info_from_b(), &mut mem, &e, &mut Vec::new());
    t.transmit(&s, &mut mem, &e.policy, &mut out);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert!(queued_after(&out).is_empty());
}

#[test]
fn without_preference_nothing_is_tested_or_reordered() {
    let lab = Lab::new(true);
    let mut mem = SaMemory::default();
    for now in [1000, 2000, 60_000] {
        let (_, out) = request(&lab, now, now == 1000, &mut mem, &env());
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert!(queued_after(&out).is_empty());
    }
    assert_eq!(mem.preferred, None);
    // an equal weight is no better either
    let e = env_with(|p| p.set("preference", "rw-*=100").unwrap());
    let (_, out) = request(&lab, 1000, false, &mut mem, &e);
    assert_eq!(sends(&out), [pair(RW_B, GW)]);
    assert!(queued_after(&out).is_empty());
}

#[test]
fn paths_are_probed_and_addresses_announced_best_first() {
    let e = env_with(|p| {
        p.set("preference", "wlan*=10, rw-a=100, 198.18.2.0/24=50")
            .unwrap()
    });
    let gw: SocketAddr = GW.parse().unwrap();
    let peers = [gw];
    // the kernel's order: rw-b, wlan0, rw-a
    let routes: Vec<Route> = ["198.18.2.2", "198.18.3.2", "198.18.1.2"]
        .iter()
        .map(|s| Route {
            dst: gw.ip(),
            src: Some(ip(s)),
        })
        .collect();
    let ifaces = [
        on("198.18.1.2", "rw-a", false),
        on("198.18.2.2", "rw-b", false),
        on("198.18.3.2", "wlan0", false),
    ];
    let mut s = sa(&peers, &[], &routes);
    s.my_host = "198.18.9.9:4500".parse().unwrap();
    s.route_current = None;
    s.local_interfaces = &ifaces;
    let mut t = MobikeTask::new(true);
    t.enable_probing();
    let mut out = Vec::new();
    assert!(t.transmit(&s, &mut SaMemory::default(), &e.policy, &mut out));
    assert_eq!(
        sends(&out),
        [pair(RW_A, GW), pair(RW_B, GW), pair("198.18.3.2:4500", GW)]
    );
    // without a preference: the kernel's order
    let mut t = MobikeTask::new(true);
    t.enable_probing();
    let mut out = Vec::new();
    t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
    assert_eq!(sends(&out)[0], pair(RW_B, GW));
    // announced best first
    let locals: Vec<IpAddr> = ["198.18.3.2", "198.18.2.2", "198.18.1.2"]
        .iter()
        .map(|a| ip(a))
        .collect();
    let mut s = sa(&[], &locals, &[]);
    s.local_interfaces = &ifaces;
    s.my_host = "198.18.9.9:4500".parse().unwrap();
    let auth = msg(Exchange::IkeAuth, "198.18.9.9:4500", GW, &[]);
    let mut out = Vec::new();
    MobikeTask::new(true).build(&s, &auth, &mut SaMemory::default(), &e, &mut out);
    assert_eq!(
        announced(&out),
        [
            vec![198, 18, 1, 2],
            vec![198, 18, 2, 2],
            vec![198, 18, 3, 2]
        ]
    );
}
