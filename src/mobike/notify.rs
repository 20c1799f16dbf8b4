//! MOBIKE notify payloads (RFC 4555 4, RFC 7296 3.10): types, decoding
//! with length checks, encoding.
//!
//! Never: lets a malformed notify reach task state; every length is checked.

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

/// A decoded MOBIKE-relevant notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notify {
    MobikeSupported,
    AdditionalAddress(std::net::IpAddr),
    NoAdditionalAddresses,
    UpdateSaAddresses,
    Cookie2(Vec<u8>),
    NatDetectionSourceIp([u8; 20]),
    NatDetectionDestinationIp([u8; 20]),
    UnacceptableAddresses,
    UnexpectedNatDetected,
    /// NO_NATS_ALLOWED: the addresses and ports the sender used.
    NoNatsAllowed { src: std::net::SocketAddr, dst: std::net::SocketAddr },
}
