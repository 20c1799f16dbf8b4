//! MOBIKE notify payloads (RFC 4555 4, RFC 7296 3.10): types, decoding
//! with length checks, encoding.
//!
//! Never: lets a malformed notify reach task state; every length is checked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::RawNotify;

/// Notify message types (IANA "IKEv2 Notify Message Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum NotifyType {
    UnacceptableAddresses = 40,
    UnexpectedNatDetected = 41,
    NatDetectionSourceIp = 16388,
    NatDetectionDestinationIp = 16389,
    MobikeSupported = 16396,
    AdditionalIp4Address = 16397,
    AdditionalIp6Address = 16398,
    NoAdditionalAddresses = 16399,
    UpdateSaAddresses = 16400,
    Cookie2 = 16401,
    NoNatsAllowed = 16402,
}

impl NotifyType {
    /// The MOBIKE-relevant type with this number, if any.
    pub fn from_u16(ty: u16) -> Option<Self> {
        use NotifyType::*;
        Some(match ty {
            40 => UnacceptableAddresses,
            41 => UnexpectedNatDetected,
            16388 => NatDetectionSourceIp,
            16389 => NatDetectionDestinationIp,
            16396 => MobikeSupported,
            16397 => AdditionalIp4Address,
            16398 => AdditionalIp6Address,
            16399 => NoAdditionalAddresses,
            16400 => UpdateSaAddresses,
            16401 => Cookie2,
            16402 => NoNatsAllowed,
            _ => return None,
        })
    }

    /// The RFC's name of the type, for logs.
    pub fn name(self) -> &'static str {
        use NotifyType::*;
        match self {
            UnacceptableAddresses => "UNACCEPTABLE_ADDRESSES",
            UnexpectedNatDetected => "UNEXPECTED_NAT_DETECTED",
            NatDetectionSourceIp => "NAT_DETECTION_SOURCE_IP",
            NatDetectionDestinationIp => "NAT_DETECTION_DESTINATION_IP",
            MobikeSupported => "MOBIKE_SUPPORTED",
            AdditionalIp4Address => "ADDITIONAL_IP4_ADDRESS",
            AdditionalIp6Address => "ADDITIONAL_IP6_ADDRESS",
            NoAdditionalAddresses => "NO_ADDITIONAL_ADDRESSES",
            UpdateSaAddresses => "UPDATE_SA_ADDRESSES",
            Cookie2 => "COOKIE2",
            NoNatsAllowed => "NO_NATS_ALLOWED",
        }
    }
}

/// Shortest and longest COOKIE2 (RFC 4555 4.2.5: 8 to 64 octets).
pub const COOKIE2_MIN: usize = 8;
pub const COOKIE2_MAX: usize = 64;
/// NAT-D data is a SHA-1 digest (RFC 7296 2.23).
pub const NATD_LEN: usize = 20;

/// The data of a notify, inline up to the longest a MOBIKE notify may
/// carry (a COOKIE2 of 64 octets): a gateway decodes and builds several per
/// roaming IKE_SA, none on the heap. Longer data (only a hostile test
/// peer's) spills there.
pub type NotifyData = smallvec::SmallVec<[u8; COOKIE2_MAX]>;

/// A decoded MOBIKE-relevant notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notify {
    MobikeSupported,
    AdditionalAddress(IpAddr),
    NoAdditionalAddresses,
    UpdateSaAddresses,
    Cookie2(NotifyData),
    NatDetectionSourceIp([u8; 20]),
    NatDetectionDestinationIp([u8; 20]),
    UnacceptableAddresses,
    UnexpectedNatDetected,
    /// NO_NATS_ALLOWED: the addresses and ports the sender used.
    NoNatsAllowed {
        src: SocketAddr,
        dst: SocketAddr,
    },
}

/// Why a MOBIKE notify was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub ty: NotifyType,
    pub len: usize,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ignoring malformed {} notify (length {})",
            self.ty.name(),
            self.len
        )
    }
}

/// Decodes a raw notify: `Ok(None)` if it is not a MOBIKE notify,
/// `Err` if it is one with a length the RFC does not allow.
pub fn decode(raw: &RawNotify<'_>) -> Result<Option<Notify>, Malformed> {
    let Some(ty) = NotifyType::from_u16(raw.ty) else {
        return Ok(None);
    };
    let d = raw.data;
    let bad = Malformed { ty, len: d.len() };
    let empty = |n: Notify| if d.is_empty() { Ok(Some(n)) } else { Err(bad) };
    let hash = || <[u8; 20]>::try_from(d).map_err(|_| bad);
    use NotifyType::*;
    match ty {
        // RFC 4555 4.1.1, 4.1.2, 4.2.1, 4.2.3, 4.2.4: these carry no data.
        MobikeSupported => empty(Notify::MobikeSupported),
        NoAdditionalAddresses => empty(Notify::NoAdditionalAddresses),
        UpdateSaAddresses => empty(Notify::UpdateSaAddresses),
        UnacceptableAddresses => empty(Notify::UnacceptableAddresses),
        UnexpectedNatDetected => empty(Notify::UnexpectedNatDetected),
        // RFC 4555 4.2.2: exactly one address of the stated family.
        AdditionalIp4Address => <[u8; 4]>::try_from(d)
            .map(|a| Some(Notify::AdditionalAddress(IpAddr::V4(Ipv4Addr::from(a)))))
            .map_err(|_| bad),
        AdditionalIp6Address => <[u8; 16]>::try_from(d)
            .map(|a| Some(Notify::AdditionalAddress(IpAddr::V6(Ipv6Addr::from(a)))))
            .map_err(|_| bad),
        Cookie2 if (COOKIE2_MIN..=COOKIE2_MAX).contains(&d.len()) => {
            Ok(Some(Notify::Cookie2(NotifyData::from_slice(d))))
        }
        Cookie2 => Err(bad),
        NatDetectionSourceIp => Ok(Some(Notify::NatDetectionSourceIp(hash()?))),
        NatDetectionDestinationIp => Ok(Some(Notify::NatDetectionDestinationIp(hash()?))),
        // RFC 4555 4.2.6: IP addresses of the sender and the receiver, then
        // their ports; 12 octets for IPv4, 36 for IPv6.
        NoNatsAllowed => match d.len() {
            12 => {
                let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(d[o], d[o + 1], d[o + 2], d[o + 3]));
                let port = |o: usize| u16::from_be_bytes([d[o], d[o + 1]]);
                Ok(Some(Notify::NoNatsAllowed {
                    src: SocketAddr::new(ip(0), port(8)),
                    dst: SocketAddr::new(ip(4), port(10)),
                }))
            }
            36 => {
                let ip = |o: usize| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&d[o..o + 16]);
                    IpAddr::V6(Ipv6Addr::from(a))
                };
                let port = |o: usize| u16::from_be_bytes([d[o], d[o + 1]]);
                Ok(Some(Notify::NoNatsAllowed {
                    src: SocketAddr::new(ip(0), port(32)),
                    dst: SocketAddr::new(ip(16), port(34)),
                }))
            }
            _ => Err(bad),
        },
    }
}

fn ip_bytes(ip: IpAddr) -> NotifyData {
    match ip {
        IpAddr::V4(a) => NotifyData::from_slice(&a.octets()),
        IpAddr::V6(a) => NotifyData::from_slice(&a.octets()),
    }
}

/// Encodes a notify as its type and data.
pub fn encode(n: &Notify) -> (NotifyType, NotifyData) {
    use NotifyType::*;
    match n {
        Notify::MobikeSupported => (MobikeSupported, NotifyData::new()),
        Notify::AdditionalAddress(ip @ IpAddr::V4(_)) => (AdditionalIp4Address, ip_bytes(*ip)),
        Notify::AdditionalAddress(ip @ IpAddr::V6(_)) => (AdditionalIp6Address, ip_bytes(*ip)),
        Notify::NoAdditionalAddresses => (NoAdditionalAddresses, NotifyData::new()),
        Notify::UpdateSaAddresses => (UpdateSaAddresses, NotifyData::new()),
        Notify::Cookie2(c) => (Cookie2, c.clone()),
        Notify::NatDetectionSourceIp(h) => (NatDetectionSourceIp, NotifyData::from_slice(h)),
        Notify::NatDetectionDestinationIp(h) => {
            (NatDetectionDestinationIp, NotifyData::from_slice(h))
        }
        Notify::UnacceptableAddresses => (UnacceptableAddresses, NotifyData::new()),
        Notify::UnexpectedNatDetected => (UnexpectedNatDetected, NotifyData::new()),
        Notify::NoNatsAllowed { src, dst } => {
            let mut d = ip_bytes(src.ip());
            d.extend_from_slice(&ip_bytes(dst.ip()));
            d.extend_from_slice(&src.port().to_be_bytes());
            d.extend_from_slice(&dst.port().to_be_bytes());
            (NoNatsAllowed, d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ty: NotifyType, data: &[u8]) -> Result<Option<Notify>, Malformed> {
        decode(&RawNotify {
            ty: ty as u16,
            data,
        })
    }

    #[test]
    fn every_notify_round_trips() {
        let all = [
            Notify::MobikeSupported,
            Notify::AdditionalAddress("198.18.2.2".parse().unwrap()),
            Notify::AdditionalAddress("2001:db8::2".parse().unwrap()),
            Notify::NoAdditionalAddresses,
            Notify::UpdateSaAddresses,
            Notify::Cookie2(NotifyData::from_elem(7, 8)),
            Notify::Cookie2(NotifyData::from_elem(9, 64)),
            Notify::NatDetectionSourceIp([1; 20]),
            Notify::NatDetectionDestinationIp([2; 20]),
            Notify::UnacceptableAddresses,
            Notify::UnexpectedNatDetected,
            Notify::NoNatsAllowed {
                src: "198.18.1.2:4500".parse().unwrap(),
                dst: "198.18.1.1:500".parse().unwrap(),
            },
            Notify::NoNatsAllowed {
                src: "[2001:db8::2]:4500".parse().unwrap(),
                dst: "[2001:db8::1]:4500".parse().unwrap(),
            },
        ];
        for n in all {
            let (ty, data) = encode(&n);
            assert_eq!(raw(ty, &data), Ok(Some(n)));
        }
    }

    #[test]
    fn no_nats_allowed_field_order_follows_rfc_4555_4_2_6() {
        let d = [198, 18, 1, 2, 198, 18, 1, 1, 0x11, 0x94, 0x01, 0xf4];
        assert_eq!(
            raw(NotifyType::NoNatsAllowed, &d),
            Ok(Some(Notify::NoNatsAllowed {
                src: "198.18.1.2:4500".parse().unwrap(),
                dst: "198.18.1.1:500".parse().unwrap()
            }))
        );
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        use NotifyType::*;
        let cases: &[(NotifyType, &[usize])] = &[
            (MobikeSupported, &[1, 4]),
            (NoAdditionalAddresses, &[1]),
            (UpdateSaAddresses, &[1]),
            (UnacceptableAddresses, &[2]),
            (UnexpectedNatDetected, &[3]),
            (AdditionalIp4Address, &[0, 3, 5, 16]),
            (AdditionalIp6Address, &[0, 4, 15, 17]),
            (Cookie2, &[0, 7, 65, 1000]),
            (NatDetectionSourceIp, &[0, 19, 21]),
            (NatDetectionDestinationIp, &[0, 19, 21]),
            (NoNatsAllowed, &[0, 11, 13, 35, 37]),
        ];
        for (ty, lens) in cases {
            for &len in *lens {
                let data = vec![0u8; len];
                assert_eq!(
                    raw(*ty, &data),
                    Err(Malformed { ty: *ty, len }),
                    "{} length {len}",
                    ty.name()
                );
            }
        }
    }

    #[test]
    fn other_notifies_are_not_ours() {
        assert_eq!(
            decode(&RawNotify {
                ty: 16384,
                data: &[1, 2]
            }),
            Ok(None)
        );
        assert_eq!(decode(&RawNotify { ty: 24, data: &[] }), Ok(None));
    }
}
