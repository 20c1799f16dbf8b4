//! Tests of the MOBIKE task, one file per part of it, and the fixtures
//! they share: the environment, views and messages a step is given, and
//! readers of the actions it returns. A scenario only one part's tests
//! play (an answered path check, the road warrior's `preference` lab)
//! stays beside them.
//!
//! Never: decides what a step must do. A fixture builds facts or reads
//! actions; each test asserts the outcome itself.

use super::*;
use crate::mobike::memory::NAT_RETRIES;
use crate::mobike::notify::NotifyType;
use crate::mobike::{
    Condition, Extension, Families, RawNotify, ReturnRoutability, Route, CHILD_REKEY_DEFER_MS,
    MAX_ANNOUNCED_ADDRESSES,
};
#[allow(deprecated)]
use ring::test::rand::FixedByteRandom;
use std::net::IpAddr;

mod addresses;
mod initiator;
mod paths;
mod responder;

// ring seals SecureRandom; its fixed-byte test source is the only
// deterministic one it offers.
#[allow(deprecated)]
const RNG: FixedByteRandom = FixedByteRandom { byte: 0x5a };

fn env() -> Env<'static> {
    Env {
        rng: &RNG,
        fake_natd_source: Ipv4Addr::new(198, 18, 99, 99),
        policy: Box::leak(Box::default()),
    }
}

fn sa<'a>(peers: &'a [SocketAddr], locals: &'a [IpAddr], routes: &'a [Route]) -> SaView<'a> {
    crate::mobike::test_view(peers, locals, routes)
}

fn msg<'a>(ex: Exchange, src: &str, dst: &str, notifies: &'a [RawNotify<'a>]) -> Message<'a> {
    Message {
        exchange: ex,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        spi_i: [1; 8],
        spi_r: [2; 8],
        message_id: 1,
        notifies,
        route_src: None,
    }
}

fn notifies(out: &[Action]) -> Vec<NotifyType> {
    out.iter()
        .filter_map(|a| match a {
            Action::AddNotify { ty, .. } => Some(*ty),
            _ => None,
        })
        .collect()
}

/// The last action before `out[at]` that is not a log line.
fn action_before(out: &[Action], at: usize) -> Option<&Action> {
    out[..at].iter().rfind(|a| !matches!(a, Action::Log { .. }))
}

fn data_of(out: &[Action], want: NotifyType) -> Vec<u8> {
    out.iter()
        .find_map(|a| match a {
            Action::AddNotify { ty, data } if *ty == want => Some(data.to_vec()),
            _ => None,
        })
        .expect("notify present")
}

fn raw(ty: NotifyType, data: &[u8]) -> RawNotify<'_> {
    RawNotify {
        ty: ty as u16,
        data,
    }
}

fn env_with(f: impl FnOnce(&mut Policy)) -> Env<'static> {
    let mut p = Policy::default();
    f(&mut p);
    Env {
        policy: Box::leak(Box::new(p)),
        ..env()
    }
}

fn path(l: &str, r: &str) -> Path {
    Path {
        local: l.parse().unwrap(),
        remote: r.parse().unwrap(),
    }
}

fn updates(out: &[Action]) -> Vec<(UpdateForce, UpdateReason)> {
    out.iter()
        .filter_map(|a| match a {
            Action::UpdateHosts { force, reason, .. } => Some((*force, *reason)),
            _ => None,
        })
        .collect()
}

/// The gateway's view after moving its IKE_SA to the road warrior's
/// new address: original responder.
fn gw_view<'a>() -> SaView<'a> {
    let mut s = sa(&[], &[], &[]);
    s.original_initiator = false;
    s.my_host = "198.18.1.1:4500".parse().unwrap();
    s.other_host = "198.18.2.2:4500".parse().unwrap();
    s.route_current = None;
    s
}

fn peer_update(e: &Env<'_>, mem: &mut SaMemory, src: &str, mid: u32) -> (MobikeTask, Vec<Action>) {
    let n = [raw(NotifyType::UpdateSaAddresses, &[])];
    let mut m = msg(Exchange::Informational, src, "198.18.1.1:4500", &n);
    m.message_id = mid;
    let mut t = MobikeTask::new(false);
    let mut out = Vec::new();
    // the gateway, still on the road warrior's first address
    let mut s = gw_view();
    s.other_host = "198.18.1.2:4500".parse().unwrap();
    assert_eq!(t.process(&s, &m, mem, e, &mut out), Status::NeedMore);
    (t, out)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn range(from: &str, to: &str) -> crate::mobike::policy::AddressRange {
    crate::mobike::policy::AddressRange {
        from: ip(from),
        to: ip(to),
    }
}

fn on(addr: &str, name: &str, tunnel: bool) -> crate::mobike::OnInterface {
    crate::mobike::OnInterface {
        addr: ip(addr),
        iface: crate::mobike::Interface {
            name: name.into(),
            tunnel,
            ignored: false,
        },
    }
}

fn announced(out: &[Action]) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|a| match a {
            Action::AddNotify {
                ty: NotifyType::AdditionalIp4Address | NotifyType::AdditionalIp6Address,
                data,
            } => Some(data.to_vec()),
            _ => None,
        })
        .collect()
}

fn logs(out: &[Action], level: u8) -> Vec<&str> {
    out.iter()
        .filter_map(|a| match a {
            Action::Log { level: l, text } if *l == level => Some(text.as_ref()),
            _ => None,
        })
        .collect()
}

fn sends(out: &[Action]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { src, dst } => Some((src.to_string(), dst.to_string())),
            _ => None,
        })
        .collect()
}
