//! A hostile or broken MOBIKE peer, for end-to-end tests only.
//!
//! Compiled only with the cargo feature `hostile-peer`, which no release
//! build or package enables (`tests/hostile.sh` checks that the release
//! library has no trace of it). It owns the list of [`Case`]s and rewrites
//! the actions the honest core produced for a `build` or a `transmit`
//! before the adapter applies them, so a charon with this library sends what
//! a lying or careless implementation would. `tests/hostile.sh` states and
//! checks what the honest peer must do about each case.
//!
//! The case comes from the environment variable `MOBIKE_RS_HOSTILE`, read
//! once (I/O of the test build lives here and in the ABI layer, never in
//! the core). Every mutation adds the log line `mobike-rs HOSTILE: <case>`,
//! so a test can tell that it happened. Never: changes what the core
//! decides about received messages; the hostile side stays an honest
//! receiver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::mobike::notify::{self, Notify, NotifyData, NotifyType};
use crate::mobike::{natd, Action, Exchange, Message};

/// The environment variable naming the case.
pub const ENV: &str = "MOBIKE_RS_HOSTILE";

/// The third party `bomb` aims at unless `bomb:<ip>` names another one
/// (an unrelated host of the lab, 198.18.0.0/15).
pub const DEFAULT_VICTIM: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 3);

/// What the hostile peer does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// `nat-lie`: adds NO_NATS_ALLOWED to UPDATE_SA_ADDRESSES requests with
    /// addresses and ports that are not the ones in the IP and UDP headers
    /// (RFC 4555 3.9: the responder must answer UNEXPECTED_NAT_DETECTED and
    /// change nothing).
    NatLie,
    /// `bomb[:<ip>]`: sends UPDATE_SA_ADDRESSES (and every retransmission
    /// of it) from a third party's address it holds but cannot receive at,
    /// with NAT-D hashes matching that address, so a responder without a
    /// return routability check moves its traffic onto the victim (RFC 4555
    /// 5.3).
    Bomb(IpAddr),
    /// `addresses-<n>` (n from 1 to 1000): n ADDITIONAL_IP4_ADDRESS
    /// notifies (198.19.x.y) instead of the real address list in
    /// UPDATE_SA_ADDRESSES requests. The tests use 1000 (more than charon's
    /// max_packet) and 16 (with UPDATE_SA_ADDRESSES, two NAT-D and COOKIE2
    /// the 20 notifies charon's parser accepts in one message; with the
    /// source address one more than the core keeps).
    Addresses(u16),
    /// `cookie2-<n>` for n in 0, 7, 65, 1000: the COOKIE2 of an
    /// UPDATE_SA_ADDRESSES request is n octets long (RFC 4555 4.2.5 allows
    /// 8 to 64).
    Cookie2Len(usize),
    /// `cookie2-wrong-echo`: as responder, echo a COOKIE2 other than the
    /// one received (RFC 4555 3.5: the initiator must close the IKE_SA).
    Cookie2WrongEcho,
    /// `bad-lengths`: UPDATE_SA_ADDRESSES requests carry
    /// ADDITIONAL_IP4_ADDRESS of 3 and 5 octets, ADDITIONAL_IP6_ADDRESS of
    /// 15, NO_ADDITIONAL_ADDRESSES and UPDATE_SA_ADDRESSES with data and
    /// NO_NATS_ALLOWED of 11 octets, and no well-formed address notify or
    /// UPDATE_SA_ADDRESSES (so an honest receiver has nothing to act on).
    /// charon's own parser checks the lengths of the two address notifies
    /// and refuses the whole message before MOBIKE sees it.
    BadLengths,
    /// `bad-lengths-mobike`: like `bad-lengths` with only the malformed
    /// notifies charon's parser lets through to MOBIKE: UPDATE_SA_ADDRESSES
    /// and NO_ADDITIONAL_ADDRESSES with data, NO_NATS_ALLOWED of 11 octets.
    BadLengthsMobike,
}

impl Case {
    /// Parses the value of [`ENV`].
    pub fn parse(s: &str) -> Option<Case> {
        Some(match s.trim() {
            "nat-lie" => Case::NatLie,
            "bomb" => Case::Bomb(IpAddr::V4(DEFAULT_VICTIM)),
            "cookie2-0" => Case::Cookie2Len(0),
            "cookie2-7" => Case::Cookie2Len(7),
            "cookie2-65" => Case::Cookie2Len(65),
            "cookie2-1000" => Case::Cookie2Len(1000),
            "cookie2-wrong-echo" => Case::Cookie2WrongEcho,
            "bad-lengths" => Case::BadLengths,
            "bad-lengths-mobike" => Case::BadLengthsMobike,
            other => {
                if let Some(n) = other.strip_prefix("addresses-") {
                    let n: u16 = n.parse().ok()?;
                    return (1..=1000).contains(&n).then_some(Case::Addresses(n));
                }
                Case::Bomb(other.strip_prefix("bomb:")?.parse().ok()?)
            }
        })
    }

    /// The case's name as the tests and the log use it.
    pub fn name(self) -> String {
        match self {
            Case::NatLie => "nat-lie".into(),
            Case::Bomb(ip) => format!("bomb:{ip}"),
            Case::Addresses(n) => format!("addresses-{n}"),
            Case::Cookie2Len(n) => format!("cookie2-{n}"),
            Case::Cookie2WrongEcho => "cookie2-wrong-echo".into(),
            Case::BadLengths => "bad-lengths".into(),
            Case::BadLengthsMobike => "bad-lengths-mobike".into(),
        }
    }
}

/// The configured case: `Ok(None)` without [`ENV`], `Err(value)` for a
/// value that names no case.
fn configured() -> &'static Result<Option<Case>, String> {
    static CASE: OnceLock<Result<Option<Case>, String>> = OnceLock::new();
    CASE.get_or_init(|| match std::env::var(ENV) {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Case::parse(&v).map(Some).ok_or(v),
    })
}

/// The task (its ABI handle's address) whose UPDATE_SA_ADDRESSES request
/// was sent from the victim's address; its transmissions go from there too.
/// A task's request is always built before it is transmitted, so a reused
/// address is cleared before it could be mistaken for the old task.
static BOMBING_TASK: AtomicUsize = AtomicUsize::new(0);

/// Called by the ABI after the core built (part of) a message.
pub fn on_build(
    task: usize,
    initiator: bool,
    force_encap: bool,
    msg: &Message<'_>,
    out: &mut Vec<Action>,
) {
    let case = match configured() {
        Ok(Some(c)) => *c,
        Ok(None) => return,
        Err(v) => {
            warn_unknown(v, out);
            return;
        }
    };
    if BOMBING_TASK.load(Ordering::SeqCst) == task {
        BOMBING_TASK.store(0, Ordering::SeqCst);
    }
    if msg.exchange != Exchange::Informational {
        return;
    }
    let update_request = initiator && has(out, NotifyType::UpdateSaAddresses);
    match case {
        Case::NatLie if update_request => {
            remove(out, NotifyType::NoNatsAllowed);
            // RFC 4555 4.2.6 layout; addresses the IP header never had.
            let lie = Notify::NoNatsAllowed {
                src: "198.19.7.7:4501".parse().expect("literal"),
                dst: "198.19.8.8:4502".parse().expect("literal"),
            };
            push(out, &lie);
            mark(
                out,
                case,
                "NO_NATS_ALLOWED 198.19.7.7[4501] - 198.19.8.8[4502]",
            );
        }
        Case::Bomb(victim) if update_request => {
            let src = SocketAddr::new(victim, msg.src.port());
            out.retain(|a| !matches!(a, Action::SetSource(_)));
            out.insert(0, Action::SetSource(src));
            // NAT-D that matches the forged source: no NAT to be seen.
            let hash = natd::hash(&msg.spi_i, &msg.spi_r, src);
            for a in out.iter_mut() {
                if let Action::AddNotify { ty, data } = a {
                    if *ty == NotifyType::NatDetectionSourceIp && !force_encap {
                        *data = NotifyData::from_slice(&hash);
                    }
                }
            }
            BOMBING_TASK.store(task, Ordering::SeqCst);
            mark(out, case, &format!("UPDATE_SA_ADDRESSES sent from {src}"));
        }
        Case::Addresses(n) if update_request => {
            remove(out, NotifyType::AdditionalIp4Address);
            remove(out, NotifyType::AdditionalIp6Address);
            remove(out, NotifyType::NoAdditionalAddresses);
            for i in 1..=n {
                let [hi, lo] = i.to_be_bytes();
                let ip = Ipv4Addr::new(198, 19, hi, lo);
                push(out, &Notify::AdditionalAddress(IpAddr::V4(ip)));
            }
            mark(
                out,
                case,
                &format!("{n} ADDITIONAL_IP4_ADDRESS from 198.19.0.1"),
            );
        }
        Case::Cookie2Len(n) if update_request => {
            remove(out, NotifyType::Cookie2);
            out.push(Action::AddNotify {
                ty: NotifyType::Cookie2,
                data: NotifyData::from_elem(0xc2, n),
            });
            mark(out, case, &format!("COOKIE2 of {n} octets"));
        }
        Case::Cookie2WrongEcho if !initiator && has(out, NotifyType::Cookie2) => {
            for a in out.iter_mut() {
                if let Action::AddNotify { ty, data } = a {
                    if *ty == NotifyType::Cookie2 {
                        data.iter_mut().for_each(|b| *b = !*b);
                    }
                }
            }
            mark(
                out,
                case,
                "echoing the received COOKIE2 with every bit flipped",
            );
        }
        Case::BadLengths | Case::BadLengthsMobike if update_request => {
            for ty in [
                NotifyType::UpdateSaAddresses,
                NotifyType::AdditionalIp4Address,
                NotifyType::AdditionalIp6Address,
                NotifyType::NoAdditionalAddresses,
                NotifyType::NoNatsAllowed,
            ] {
                remove(out, ty);
            }
            let mut bad = vec![
                (NotifyType::UpdateSaAddresses, 4),
                (NotifyType::NoAdditionalAddresses, 4),
                (NotifyType::NoNatsAllowed, 11),
            ];
            if case == Case::BadLengths {
                bad.extend([
                    (NotifyType::AdditionalIp4Address, 3),
                    (NotifyType::AdditionalIp4Address, 5),
                    (NotifyType::AdditionalIp6Address, 16 - 1),
                ]);
            }
            let what: Vec<String> = bad
                .iter()
                .map(|(ty, len)| format!("{}({len})", ty.name()))
                .collect();
            for (ty, len) in bad {
                out.push(Action::AddNotify {
                    ty,
                    data: NotifyData::from_elem(0xbd, len),
                });
            }
            mark(out, case, &what.join(" "));
        }
        _ => {}
    }
}

/// Called by the ABI after the core chose the paths of a (re)transmission.
pub fn on_transmit(task: usize, out: &mut Vec<Action>) {
    let Ok(Some(case @ Case::Bomb(victim))) = configured() else {
        return;
    };
    if task == 0 || BOMBING_TASK.load(Ordering::SeqCst) != task {
        return;
    }
    let mut changed = false;
    for a in out.iter_mut() {
        if let Action::Send { src, .. } = a {
            *src = SocketAddr::new(*victim, src.port());
            changed = true;
        }
    }
    if changed {
        mark(out, *case, &format!("transmitting from {victim}"));
    }
}

fn has(out: &[Action], want: NotifyType) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::AddNotify { ty, .. } if *ty == want))
}

fn remove(out: &mut Vec<Action>, want: NotifyType) {
    out.retain(|a| !matches!(a, Action::AddNotify { ty, .. } if *ty == want));
}

fn push(out: &mut Vec<Action>, n: &Notify) {
    let (ty, data) = notify::encode(n);
    out.push(Action::AddNotify { ty, data });
}

fn mark(out: &mut Vec<Action>, case: Case, what: &str) {
    out.push(Action::Log {
        level: 1,
        text: format!("mobike-rs HOSTILE: {}: {what}", case.name()).into(),
    });
}

fn warn_unknown(value: &str, out: &mut Vec<Action>) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        out.push(Action::Log {
            level: 1,
            text: format!("mobike-rs HOSTILE: unknown case '{value}' in {ENV}, acting honestly")
                .into(),
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_name_parses_back() {
        for s in [
            "nat-lie",
            "addresses-1000",
            "addresses-16",
            "cookie2-0",
            "cookie2-7",
            "cookie2-65",
            "cookie2-1000",
            "cookie2-wrong-echo",
            "bad-lengths",
            "bad-lengths-mobike",
        ] {
            assert_eq!(Case::parse(s).map(Case::name).as_deref(), Some(s));
        }
        assert_eq!(
            Case::parse("bomb"),
            Some(Case::Bomb("198.18.3.3".parse().unwrap()))
        );
        assert_eq!(
            Case::parse("bomb:198.18.9.9"),
            Some(Case::Bomb("198.18.9.9".parse().unwrap()))
        );
        assert_eq!(Case::parse("cookie2-8"), None);
        assert_eq!(Case::parse("addresses-1001"), None);
        assert_eq!(Case::parse("addresses-0"), None);
        assert_eq!(Case::parse("bomb:nowhere"), None);
    }
}
