//! Fuzzes MOBIKE notify decoding (`mobike::notify::decode`).
//!
//! Input: notify type (u16, network byte order), then the notify data.
//! Checks that a decoded notify encodes to the same bytes and decodes to the
//! same value again, and that exactly the lengths RFC 4555 4 and RFC 7296
//! 2.23 allow are accepted.
//!
//! Run: `scripts/fuzz.sh` (all targets, bounded), or by hand
//! `cd fuzz && cargo fuzz run notify_decode /tmp/corpus seeds/notify_decode`
//! (the first directory collects new inputs; keep it out of the repository).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobike_rs::mobike::notify::{decode, encode};
use mobike_rs::mobike::RawNotify;

/// The data lengths the RFCs allow for a MOBIKE-relevant notify type,
/// written down here independently of the decoder. `None`: a type this
/// table does not know (not checked).
fn allowed_len(ty: u16, len: usize) -> Option<bool> {
    Some(match ty {
        // RFC 4555 4.1.1, 4.2.1, 4.2.3, 4.2.4, 4.2.7, 4.2.8: no data.
        40 | 41 | 16396 | 16399 | 16400 => len == 0,
        // RFC 7296 2.23: SHA-1 digest.
        16388 | 16389 => len == 20,
        // RFC 4555 4.2.2: one address of the stated family.
        16397 => len == 4,
        16398 => len == 16,
        // RFC 4555 4.2.5: 8 to 64 octets.
        16401 => (8..=64).contains(&len),
        // RFC 4555 4.2.6: two addresses and two ports, IPv4 or IPv6.
        16402 => len == 12 || len == 36,
        _ => return None,
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((ty, data)) = input.split_first_chunk::<2>() else {
        return;
    };
    let ty = u16::from_be_bytes(*ty);
    let rule = allowed_len(ty, data.len());
    match decode(&RawNotify { ty, data }) {
        Ok(None) => assert_eq!(rule, None, "type {ty} is MOBIKE-relevant but was ignored"),
        Err(m) => {
            assert_eq!((m.ty as u16, m.len), (ty, data.len()));
            assert_eq!(
                rule,
                Some(false),
                "type {ty}: length {} refused",
                data.len()
            );
        }
        Ok(Some(n)) => {
            assert_ne!(
                rule,
                Some(false),
                "type {ty}: length {} accepted",
                data.len()
            );
            let (ety, edata) = encode(&n);
            assert_eq!(ety as u16, ty, "{n:?} encodes to another type");
            assert_eq!(&edata[..], data, "{n:?} encodes to other bytes");
            let again = decode(&RawNotify {
                ty: ety as u16,
                data: &edata,
            });
            assert_eq!(again, Ok(Some(n)), "round trip");
        }
    }
});
