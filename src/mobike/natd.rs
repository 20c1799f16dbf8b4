//! NAT detection inside MOBIKE exchanges (RFC 4555 3.8, RFC 7296 2.23):
//! NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP hashes,
//! SHA-1(SPIi | SPIr | address | port), and detection of changed NAT
//! mappings during DPD.
//!
//! Owns: [`SaMemory`], the little per-IKE_SA state charon has no place for.

/// Per-IKE_SA state kept between tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaMemory {
    /// NAT_DETECTION_DESTINATION_IP hash last received in an INFORMATIONAL
    /// response (what the peer saw as our address), to notice a changed
    /// NAT mapping.
    pub last_natd_dst_hash: Option<[u8; 20]>,
}
