//! The training run of the profile-guided build (tools/pgo.sh): drives
//! the real charon adapter, the `ike_mobike_t` task of src/charon/task.rs
//! and the core behind it, on the fake strongSwan world of
//! src/charon/fake.rs (fake IKE_SAs, kernel, sender, scheduler behind
//! libcharon's real globals; charon's own messages, packets and hosts), on
//! the paths a deployment takes every day, so that the compiler lays out
//! and inlines those paths for speed (the gateway's step on a roaming
//! IKE_SA runs with cold caches; most of its cost is fetching code).
//!
//! What it runs, per IKE_SA:
//! - a gateway: the responder task of IKE_AUTH with MOBIKE_SUPPORTED and an
//!   address list, then of the road warrior's UPDATE_SA_ADDRESSES from a
//!   new address (reading the request, moving the IKE_SA, building the
//!   answer), with and without CHILD_SAs (so also the return routability
//!   check it then sends and its answer), and the IKE_SA forgotten;
//! - a road warrior: IKE_AUTH, a roam that checks every path and its
//!   transmission, the answer on the new path, the update and its answer,
//!   and a DPD.
//!
//! Built by tools/pgo.sh with MOBIKE_RS_FAKE_CHARON=1 (the fake world in
//! the library without changing its features, and so its symbol names,
//! which the profile is keyed by) and the instrumented build's RUSTFLAGS,
//! linking the library's rlib: the counts land on the library's functions
//! as the release build compiles them. Without that cfg or a strongSwan
//! tree it is a stub that says so (`cargo test` builds examples).
//!
//! It checks that each exchange does what it should (the IKE_SA moved,
//! the answer carries its notifies), so a broken build does not train on
//! error paths; it prints what it ran. It is not a test and measures
//! nothing: speed is measured by `make bench`.

#[cfg(all(mobike_charon, mobike_fake_charon))]
mod train {
    use std::net::SocketAddr;

    use mobike_rs::charon::fake::{self, FakeIkeSa, FakeLookups, Methods, World};
    use mobike_rs::charon::registry;
    use mobike_rs::charon::sys;
    use mobike_rs::mobike::natd;
    use mobike_rs::mobike::notify::NotifyType::{self, *};

    /// The SPIs of the fake IKE_SAs (fake::FakeIkeSa's IKE_SA ID), as the
    /// adapter reads them for NAT-D.
    const SPI_I: [u8; 8] = 0x1111u64.to_ne_bytes();
    const SPI_R: [u8; 8] = 0x2222u64.to_ne_bytes();

    const GW: &str = "198.18.1.1:4500";
    const OLD: &str = "198.18.1.2:4500";
    const NEW: &str = "198.18.2.2:4500";

    fn sock(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    type Notifies<'a> = &'a [(NotifyType, &'a [u8])];

    fn message(
        exchange: sys::exchange_type_t,
        src: &str,
        dst: &str,
        mid: u32,
        request: bool,
        n: Notifies<'_>,
    ) -> *mut sys::message_t {
        let m = fake::message_between(exchange, sock(src), sock(dst), mid, request);
        for (ty, data) in n {
            fake::add_raw_notify(m, *ty as u16, data);
        }
        m
    }

    /// NAT-D hashes of a message from `src` to `dst` without a NAT.
    fn natd_pair(src: &str, dst: &str) -> ([u8; 20], [u8; 20]) {
        (
            natd::hash(&SPI_I, &SPI_R, sock(src)),
            natd::hash(&SPI_I, &SPI_R, sock(dst)),
        )
    }

    /// The task processes a request from `peer` and builds its answer;
    /// returns the answer's notify types.
    fn answer(
        t: &Methods,
        exchange: sys::exchange_type_t,
        peer: &str,
        me: &str,
        mid: u32,
        n: Notifies<'_>,
    ) -> Vec<u16> {
        let req = message(exchange, peer, me, mid, true, n);
        t.process(req);
        fake::destroy_message(req);
        let resp = message(exchange, me, peer, mid, false, &[]);
        t.build(resp);
        let types = fake::notifies(resp).into_iter().map(|(ty, _)| ty).collect();
        fake::destroy_message(resp);
        types
    }

    /// The task builds a request to `peer` and processes the answer
    /// `reply` makes of its COOKIE2; returns the status of the processing.
    fn ask(
        t: &Methods,
        me: &str,
        peer: &str,
        mid: u32,
        reply: impl Fn(&[u8]) -> Vec<(NotifyType, Vec<u8>)>,
    ) -> sys::status_t {
        let req = message(sys::INFORMATIONAL, me, peer, mid, true, &[]);
        t.build(req);
        let cookie = fake::notifies(req)
            .into_iter()
            .find(|(ty, _)| *ty == Cookie2 as u16)
            .map(|(_, d)| d)
            .unwrap_or_default();
        fake::destroy_message(req);
        let n = reply(&cookie);
        let n: Vec<(NotifyType, &[u8])> = n.iter().map(|(t, d)| (*t, &d[..])).collect();
        let resp = message(sys::INFORMATIONAL, peer, me, mid, false, &n);
        let s = t.process(resp);
        fake::destroy_message(resp);
        s
    }

    /// Ends an IKE_SA: its scheduled jobs run while it is there, then the
    /// registry forgets it.
    fn forget(w: &mut World, sa: Box<FakeIkeSa>) {
        w.run_jobs();
        w.manager.sas.clear();
        w.sender.sent.clear();
        registry::forget(sa.unique_id);
        drop(sa);
    }

    fn gateway(w: &mut World, l: &'static FakeLookups, id: u32, with_children: bool) {
        w.kernel(
            &["198.18.1.1"],
            &[("198.18.1.2", "198.18.1.1"), ("198.18.2.2", "198.18.1.1")],
            &[("198.18.1.1", "eth1")],
        );
        let mut sa = FakeIkeSa::between(id, sock(GW), sock(OLD), sys::COND_AUTHENTICATED);
        w.manager.sas.push(&mut *sa);

        let t = Methods::new(&mut sa, false, l);
        let auth = [
            (MobikeSupported, &[][..]),
            (AdditionalIp4Address, &[198u8, 18, 2, 2][..]),
        ];
        let sent = answer(&t, sys::IKE_AUTH, OLD, GW, 1, &auth);
        assert!(
            sent.contains(&(MobikeSupported as u16)),
            "IKE_AUTH: {sent:?}"
        );
        t.destroy();
        assert_eq!(sa.extensions, sys::EXT_MOBIKE as u32, "MOBIKE negotiated");
        if with_children {
            sa.add_child(0xc000_0000 | id, id, "net");
        }

        let (s, d) = natd_pair(NEW, GW);
        let cookie = [7u8; 16];
        let update = [
            (UpdateSaAddresses, &[][..]),
            (NatDetectionSourceIp, &s[..]),
            (NatDetectionDestinationIp, &d[..]),
            (Cookie2, &cookie[..]),
            (NoAdditionalAddresses, &[][..]),
        ];
        let t = Methods::new(&mut sa, false, l);
        let sent = answer(&t, sys::INFORMATIONAL, NEW, GW, 2, &update);
        assert!(
            sent.contains(&(Cookie2 as u16)),
            "UPDATE_SA_ADDRESSES: {sent:?}"
        );
        t.destroy();

        if with_children {
            // the return routability check the update queued
            let t = Methods::new(&mut sa, true, l);
            ask(&t, GW, NEW, 0, |cookie| {
                vec![
                    (NatDetectionSourceIp, s.to_vec()),
                    (NatDetectionDestinationIp, d.to_vec()),
                    (Cookie2, cookie.to_vec()),
                ]
            });
            t.destroy();
        }
        assert_eq!(sa.hosts().1, Some(sock(NEW)), "the gateway followed");
        forget(w, sa);
    }

    fn road_warrior(w: &mut World, l: &'static FakeLookups, id: u32) {
        const A: &str = "198.18.1.2:4500";
        const B: &str = "198.18.2.2:4500";
        w.kernel(
            &["198.18.1.2", "198.18.2.2"],
            &[("198.18.1.1", "198.18.1.2")],
            &[("198.18.1.2", "eth1"), ("198.18.2.2", "eth2")],
        );
        let mut sa = FakeIkeSa::between(
            id,
            sock(A),
            sock(GW),
            sys::COND_ORIGINAL_INITIATOR | sys::COND_AUTHENTICATED,
        );
        sa.add_child(0xd000_0000 | id, id, "home");
        w.manager.sas.push(&mut *sa);

        let t = Methods::new(&mut sa, true, l);
        let req = message(sys::IKE_AUTH, A, GW, 1, true, &[]);
        t.build(req);
        fake::destroy_message(req);
        let resp = message(sys::IKE_AUTH, GW, A, 1, false, &[(MobikeSupported, &[])]);
        t.process(resp);
        fake::destroy_message(resp);
        t.destroy();
        assert_eq!(sa.extensions, sys::EXT_MOBIKE as u32, "MOBIKE negotiated");

        // A loses its route: the roam checks every path, from B
        w.kernel(
            &["198.18.1.2", "198.18.2.2"],
            &[("198.18.1.1", "198.18.2.2")],
            &[("198.18.1.2", "eth1"), ("198.18.2.2", "eth2")],
        );
        let (s, d) = natd_pair(GW, B);
        let reply = |cookie: &[u8]| {
            vec![
                (NatDetectionSourceIp, s.to_vec()),
                (NatDetectionDestinationIp, d.to_vec()),
                (Cookie2, cookie.to_vec()),
            ]
        };
        let t = Methods::new(&mut sa, true, l);
        t.roam(true);
        let req = message(sys::INFORMATIONAL, A, GW, 2, true, &[]);
        t.build(req);
        let cookie = fake::notifies(req)
            .into_iter()
            .find(|(ty, _)| *ty == Cookie2 as u16)
            .map(|(_, d)| d)
            .unwrap_or_default();
        fake::destroy_message(req);
        let p = fake::packet();
        t.transmit(p);
        fake::destroy_packet(p);
        assert!(!w.sender.sent.is_empty(), "the roam sent its check");
        let n = reply(&cookie);
        let n: Vec<(NotifyType, &[u8])> = n.iter().map(|(t, d)| (*t, &d[..])).collect();
        let resp = message(sys::INFORMATIONAL, GW, B, 2, false, &n);
        let status = t.process(resp);
        fake::destroy_message(resp);
        if status == sys::NEED_MORE {
            // the update on the new path
            ask(&t, B, GW, 3, reply);
        }
        t.destroy();
        assert_eq!(sa.hosts().0, Some(sock(B)), "the road warrior moved");

        let t = Methods::new(&mut sa, true, l);
        t.dpd();
        ask(&t, B, GW, 4, |cookie| vec![(Cookie2, cookie.to_vec())]);
        t.destroy();
        forget(w, sa);
    }

    pub fn main() {
        let rounds: u32 = std::env::args()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000);
        fake::quiet();
        fake::our_tasks();
        // every route leaves through eth1
        let l = fake::lookups(Some(1));
        let mut w = World::new();
        for i in 0..rounds {
            gateway(&mut w, l, 1 + i, i % 4 == 0);
            if i % 8 == 0 {
                road_warrior(&mut w, l, 1_000_000 + i);
            }
        }
        drop(w);
        println!(
            "pgo_train: {rounds} gateway IKE_SAs roamed, {} road warriors, through the adapter",
            rounds.div_ceil(8)
        );
    }
}

#[cfg(all(mobike_charon, mobike_fake_charon))]
fn main() {
    train::main()
}

#[cfg(not(all(mobike_charon, mobike_fake_charon)))]
fn main() {
    eprintln!(
        "pgo_train: built without the fake strongSwan world (tools/pgo.sh builds it with \
         STRONGSWAN_SRC and MOBIKE_RS_FAKE_CHARON=1)"
    );
    std::process::exit(2);
}
