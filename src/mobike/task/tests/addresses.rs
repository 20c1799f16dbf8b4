//! Tests of address lists (`task::addresses`): ours announced, the
//! peer's taken.

use super::*;

#[test]
fn without_other_addresses_no_additional_addresses_is_sent() {
    let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(
        &sa(&[], &locals, &[]),
        &m,
        &mut SaMemory::default(),
        &env(),
        &mut out,
    );
    assert_eq!(
        notifies(&out),
        [
            NotifyType::MobikeSupported,
            NotifyType::NoAdditionalAddresses
        ]
    );
}

#[test]
fn address_list_replaces_the_peer_set_and_keeps_the_source() {
    let n = [
        raw(NotifyType::AdditionalIp4Address, &[198, 18, 2, 1]),
        raw(
            NotifyType::AdditionalIp6Address,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ),
    ];
    let m = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.1.2:4500",
        &n,
    );
    let mut out = Vec::new();
    MobikeTask::new(false).process(
        &sa(&[], &[], &[]),
        &m,
        &mut SaMemory::default(),
        &env(),
        &mut out,
    );
    let set: Vec<&Action> = out
        .iter()
        .filter(|a| !matches!(a, Action::Log { .. }))
        .collect();
    assert_eq!(
        set,
        [
            &Action::ClearPeerAddresses,
            &Action::AddPeerAddress("198.18.1.1:4500".parse().unwrap()),
            &Action::AddPeerAddress("198.18.2.1:0".parse().unwrap()),
            &Action::AddPeerAddress("[2001:db8::1]:0".parse().unwrap()),
        ]
    );
}

#[test]
fn a_thousand_addresses_keep_at_most_the_limit_with_one_log_line() {
    let addrs: Vec<[u8; 4]> = (0..1000u32)
        .map(|i| [198, 18, (i >> 8) as u8 + 10, i as u8])
        .collect();
    let n: Vec<RawNotify> = addrs
        .iter()
        .map(|a| raw(NotifyType::AdditionalIp4Address, a))
        .collect();
    let m = msg(
        Exchange::Informational,
        "198.18.1.1:4500",
        "198.18.1.2:4500",
        &n,
    );
    let mut out = Vec::new();
    MobikeTask::new(false).process(
        &sa(&[], &[], &[]),
        &m,
        &mut SaMemory::default(),
        &env(),
        &mut out,
    );
    let kept = out
        .iter()
        .filter(|a| matches!(a, Action::AddPeerAddress(_)))
        .count();
    assert_eq!(kept, crate::mobike::policy::PEER_ADDRESSES_DEFAULT);
    let drops: Vec<_> = out
        .iter()
        .filter(|a| matches!(a, Action::Log { level: 1, text } if text.starts_with("dropping")))
        .collect();
    assert_eq!(drops.len(), 1);
}

#[test]
fn address_list_leaves_out_what_cannot_carry_ike() {
    let locals: Vec<IpAddr> = [
        "198.18.1.2",   // the IKE_SA's own
        "198.18.2.2",   // a real second address
        "198.18.200.1", // our virtual IP
        "198.18.3.3",   // on kernel-libipsec's TUN device
        "fe80::2",      // link-local
        "198.18.100.1", // inside the traffic selectors
        "2001:db8::2",  // real
    ]
    .iter()
    .map(|a| ip(a))
    .collect();
    let vips = [ip("198.18.200.1")];
    let ifaces = [
        on("198.18.3.3", "ipsec0", true),
        on("198.18.2.2", "rw-b", false),
    ];
    let ts = [range("198.18.100.0", "198.18.100.255")];
    let mut s = sa(&[], &locals, &[]);
    s.my_vips = &vips;
    s.local_interfaces = &ifaces;
    s.local_ts = &ts;
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert_eq!(
        announced(&out),
        [
            vec![198, 18, 2, 2],
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        ]
    );
    let skipped: Vec<_> = logs(&out, 2)
        .into_iter()
        .filter(|l| l.starts_with("not announcing"))
        .collect();
    assert_eq!(
        skipped,
        ["not announcing 198.18.200.1 (virtual IP), 198.18.3.3 (on tunnel interface ipsec0), \
          fe80::2 (link-local), 198.18.100.1 (inside traffic selector 198.18.100.0..198.18.100.255)"]
    );
}

#[test]
fn left_out_addresses_take_no_place_in_the_list() {
    let mut locals: Vec<IpAddr> = (1..=10u16)
        .map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i)))
        .collect();
    locals.extend((1..=9u8).map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 10, i))));
    let s = sa(&[], &locals, &[]);
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    let list = announced(&out);
    assert_eq!(list.len(), MAX_ANNOUNCED_ADDRESSES);
    assert!(list.iter().all(|a| a.len() == 4), "no link-local address");
}

#[test]
fn only_unusable_addresses_announce_no_additional_addresses() {
    // the gateway answering IKE_AUTH: its LAN address is inside the TS
    let locals = [ip("198.18.1.2"), ip("198.18.100.1")];
    let ts = [range("198.18.100.0", "198.18.100.255")];
    let mut s = sa(&[], &locals, &[]);
    s.local_ts = &ts;
    s.original_initiator = false;
    let mut out = Vec::new();
    let resp = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    assert_eq!(
        MobikeTask::new(false).build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
        Status::Success
    );
    assert_eq!(
        notifies(&out),
        [
            NotifyType::MobikeSupported,
            NotifyType::NoAdditionalAddresses
        ]
    );
}

#[test]
fn a_full_tunnel_announces_every_real_address() {
    let locals = [ip("198.18.1.2"), ip("198.18.2.2")];
    let ts = [range("0.0.0.0", "255.255.255.255")];
    let mut s = sa(&[], &locals, &[]);
    s.remote_ts = &ts;
    s.local_ts = &ts;
    let mut out = Vec::new();
    let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
    assert_eq!(announced(&out), [vec![198, 18, 2, 2]]);
}

#[test]
fn an_address_list_the_peer_has_already_is_not_sent_again() {
    let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()];
    let s = sa(&[], &locals, &[]);
    let mut mem = SaMemory::default();
    let auth = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
    MobikeTask::new(true).build(&s, &auth, &mut mem, &env(), &mut Vec::new());
    let info = msg(
        Exchange::Informational,
        "198.18.1.2:4500",
        "198.18.1.1:4500",
        &[],
    );
    let mut t = MobikeTask::new(true);
    t.addresses();
    let mut out = Vec::new();
    assert_eq!(
        t.build(&s, &info, &mut mem, &env(), &mut out),
        Status::Success
    );
    assert!(out.contains(&Action::CancelExchange), "{out:?}");
    // a new address: the list goes out
    let more: Vec<IpAddr> = vec![
        "198.18.1.2".parse().unwrap(),
        "198.18.2.2".parse().unwrap(),
        "198.18.3.2".parse().unwrap(),
    ];
    let s = sa(&[], &more, &[]);
    let mut t = MobikeTask::new(true);
    t.addresses();
    let mut out = Vec::new();
    assert_eq!(
        t.build(&s, &info, &mut mem, &env(), &mut out),
        Status::NeedMore
    );
    assert_eq!(
        notifies(&out),
        [
            NotifyType::AdditionalIp4Address,
            NotifyType::AdditionalIp4Address
        ]
    );
    // and then it is known
    let mut t = MobikeTask::new(true);
    t.addresses();
    let mut out = Vec::new();
    t.build(&s, &info, &mut mem, &env(), &mut out);
    assert!(out.contains(&Action::CancelExchange));
}
