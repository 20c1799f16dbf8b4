//! The administrator's MOBIKE policy (`charon.plugins.mobike-rs.*`): NAT
//! prohibition (RFC 4555 3.9), when the responder checks return routability
//! (3.5, 3.7), which peer addresses are acceptable (3.5) and how many are
//! kept.
//!
//! Owns: parsing and validating each setting, with an error an
//! administrator can act on, and a one-line description for the log.
//! Never: reads the configuration itself; the caller hands in key/value
//! text.

use std::fmt;
use std::net::IpAddr;

/// When the responder checks that the initiator can receive at its new
/// address (RFC 4555 3.7: by default, before the IPsec SAs move).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnRoutability {
    /// Move the IKE_SA, check, then move the IPsec SAs (the RFC's default).
    Before,
    /// Move everything, then check (3.7 MAY).
    After,
    /// No check (3.7 MAY, for well-behaved peers).
    Off,
}

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    pub from: IpAddr,
    pub to: IpAddr,
}

/// Most ranges in `acceptable_peer_addresses` (keeps a check cheap).
pub const MAX_ACCEPTABLE_RANGES: usize = 64;
/// Bounds of `max_peer_addresses`.
pub const PEER_ADDRESSES_LIMIT: usize = 32;
pub const PEER_ADDRESSES_DEFAULT: usize = 16;

/// The policy; [`Policy::default`] is what an empty configuration means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Send NO_NATS_ALLOWED in every request that can change addresses.
    pub nat_prohibition: bool,
    pub return_routability: ReturnRoutability,
    /// Peer addresses we accept; empty: any.
    pub acceptable_peer_addresses: Vec<AddressRange>,
    /// Most peer addresses kept per IKE_SA.
    pub max_peer_addresses: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            nat_prohibition: false,
            return_routability: ReturnRoutability::Before,
            acceptable_peer_addresses: Vec::new(),
            max_peer_addresses: PEER_ADDRESSES_DEFAULT,
        }
    }
}

/// A setting that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingError(pub String);

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AddressRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.from, self.to, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }

    /// `ADDR`, `ADDR/PREFIX` or `FROM-TO`, one family.
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        let bad = |why: &str| SettingError(format!("'{s}': {why}"));
        if let Some((a, b)) = s.split_once('-') {
            let from: IpAddr = a.trim().parse().map_err(|_| bad("not an address"))?;
            let to: IpAddr = b.trim().parse().map_err(|_| bad("not an address"))?;
            if from.is_ipv4() != to.is_ipv4() || !le(from, to) {
                return Err(bad("the range must go up within one address family"));
            }
            return Ok(AddressRange { from, to });
        }
        let (a, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = a.trim().parse().map_err(|_| bad("not an address"))?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        let len: u32 = match prefix {
            None => bits,
            Some(p) => p
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| bad("bad prefix length"))?,
        };
        Ok(match ip {
            IpAddr::V4(v4) => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let n = u32::from(v4);
                AddressRange {
                    from: IpAddr::V4((n & mask).into()),
                    to: IpAddr::V4((n | !mask).into()),
                }
            }
            IpAddr::V6(v6) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let n = u128::from(v6);
                AddressRange {
                    from: IpAddr::V6((n & mask).into()),
                    to: IpAddr::V6((n | !mask).into()),
                }
            }
        })
    }
}

fn le(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => false,
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" | "enabled" => Some(true),
        "no" | "false" | "0" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

impl Policy {
    /// Whether a peer address is acceptable (RFC 4555 3.5).
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.acceptable_peer_addresses.is_empty()
            || self
                .acceptable_peer_addresses
                .iter()
                .any(|r| r.contains(ip))
    }

    /// Applies one setting (key without the `charon.plugins.mobike-rs.`
    /// prefix). On error the policy is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        let value = value.trim();
        let bad = |want: &str| {
            SettingError(format!(
                "{key} = '{value}' is not valid: expected {want}; keeping {}",
                self.show(key)
            ))
        };
        match key {
            "nat_prohibition" => {
                self.nat_prohibition = parse_bool(value).ok_or_else(|| bad("yes or no"))?;
            }
            "return_routability" => {
                self.return_routability = match value.to_ascii_lowercase().as_str() {
                    "before" => ReturnRoutability::Before,
                    "after" => ReturnRoutability::After,
                    "off" | "no" => ReturnRoutability::Off,
                    _ => return Err(bad("before, after or off")),
                };
            }
            "acceptable_peer_addresses" => {
                let mut ranges = Vec::new();
                for part in value.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
                    if ranges.len() >= MAX_ACCEPTABLE_RANGES {
                        return Err(bad(&format!("at most {MAX_ACCEPTABLE_RANGES} ranges")));
                    }
                    let r = AddressRange::parse(part.trim()).map_err(|e| {
                        SettingError(format!(
                            "{key}: {e}; keeping {}",
                            self.show("acceptable_peer_addresses")
                        ))
                    })?;
                    ranges.push(r);
                }
                self.acceptable_peer_addresses = ranges;
            }
            "max_peer_addresses" => {
                self.max_peer_addresses = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=PEER_ADDRESSES_LIMIT).contains(n))
                    .ok_or_else(|| bad(&format!("a number from 1 to {PEER_ADDRESSES_LIMIT}")))?;
            }
            _ => return Err(SettingError(format!("unknown setting {key}"))),
        }
        Ok(())
    }

    /// Sets `key` back to its default (the setting was removed).
    pub fn reset(&mut self, key: &str) -> Result<(), SettingError> {
        let d = Policy::default();
        match key {
            "nat_prohibition" => self.nat_prohibition = d.nat_prohibition,
            "return_routability" => self.return_routability = d.return_routability,
            "acceptable_peer_addresses" => {
                self.acceptable_peer_addresses = d.acceptable_peer_addresses
            }
            "max_peer_addresses" => self.max_peer_addresses = d.max_peer_addresses,
            _ => return Err(SettingError(format!("unknown setting {key}"))),
        }
        Ok(())
    }

    /// A setting's current value as text.
    pub fn show(&self, key: &str) -> String {
        match key {
            "nat_prohibition" => if self.nat_prohibition { "yes" } else { "no" }.into(),
            "return_routability" => match self.return_routability {
                ReturnRoutability::Before => "before",
                ReturnRoutability::After => "after",
                ReturnRoutability::Off => "off",
            }
            .into(),
            "acceptable_peer_addresses" if self.acceptable_peer_addresses.is_empty() => {
                "any".into()
            }
            "acceptable_peer_addresses" => self
                .acceptable_peer_addresses
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "max_peer_addresses" => self.max_peer_addresses.to_string(),
            _ => String::new(),
        }
    }

    /// One line for the daemon's log.
    pub fn describe(&self) -> String {
        [
            "nat_prohibition",
            "return_routability",
            "acceptable_peer_addresses",
            "max_peer_addresses",
        ]
        .iter()
        .map(|k| format!("{k}={}", self.show(k)))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_rfc() {
        let p = Policy::default();
        assert!(!p.nat_prohibition);
        assert_eq!(p.return_routability, ReturnRoutability::Before);
        assert!(p.accepts("203.0.113.9".parse().unwrap()));
        assert_eq!(p.max_peer_addresses, 16);
        assert_eq!(
            p.describe(),
            "nat_prohibition=no return_routability=before acceptable_peer_addresses=any max_peer_addresses=16"
        );
    }

    #[test]
    fn ranges_prefixes_and_single_addresses() {
        let mut p = Policy::default();
        p.set(
            "acceptable_peer_addresses",
            "198.18.1.0/24, 198.18.2.5-198.18.2.9 2001:db8::1",
        )
        .unwrap();
        for ok in ["198.18.1.0", "198.18.1.255", "198.18.2.7", "2001:db8::1"] {
            assert!(p.accepts(ok.parse().unwrap()), "{ok}");
        }
        for no in ["198.18.2.4", "198.18.2.10", "198.18.0.255", "2001:db8::2"] {
            assert!(!p.accepts(no.parse().unwrap()), "{no}");
        }
        assert_eq!(
            p.show("acceptable_peer_addresses"),
            "198.18.1.0-198.18.1.255,198.18.2.5-198.18.2.9,2001:db8::1"
        );
        p.set("acceptable_peer_addresses", "::/0").unwrap();
        assert!(p.accepts("2001:db8:ffff::1".parse().unwrap()));
        assert!(!p.accepts("198.18.1.1".parse().unwrap()));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason_and_change_nothing() {
        let mut p = Policy::default();
        let before = p.clone();
        for (k, v) in [
            ("nat_prohibition", "maybe"),
            ("return_routability", "sometimes"),
            ("acceptable_peer_addresses", "198.18.1.0/33"),
            ("acceptable_peer_addresses", "198.18.1.9-198.18.1.1"),
            ("acceptable_peer_addresses", "198.18.1.1-2001:db8::1"),
            ("acceptable_peer_addresses", "gateway.example"),
            ("max_peer_addresses", "0"),
            ("max_peer_addresses", "33"),
            ("max_peer_addresses", "many"),
            ("no_such_thing", "1"),
        ] {
            let e = p.set(k, v).unwrap_err();
            assert!(e.0.contains(k) || e.0.contains(v), "{e}");
            assert_eq!(p, before, "{k} = {v}");
        }
        let many = (0..65)
            .map(|i| format!("198.18.3.{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(p.set("acceptable_peer_addresses", &many).is_err());
    }

    #[test]
    fn good_values_are_taken() {
        let mut p = Policy::default();
        p.set("nat_prohibition", "yes").unwrap();
        p.set("return_routability", "after").unwrap();
        p.set("max_peer_addresses", "32").unwrap();
        assert!(p.nat_prohibition);
        assert_eq!(p.return_routability, ReturnRoutability::After);
        assert_eq!(p.max_peer_addresses, 32);
        p.set("return_routability", "off").unwrap();
        assert_eq!(p.return_routability, ReturnRoutability::Off);
        for k in [
            "nat_prohibition",
            "return_routability",
            "max_peer_addresses",
        ] {
            p.reset(k).unwrap();
        }
        assert_eq!(p, Policy::default());
        assert!(p.reset("nope").is_err());
    }
}
