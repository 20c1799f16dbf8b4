//! NAT detection inside MOBIKE exchanges (RFC 4555 3.8, RFC 7296 2.23):
//! NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP hashes,
//! SHA-1(SPIi | SPIr | address | port), and detection of changed NAT
//! mappings during DPD.
//!
//! Never: trusts a hash for anything but comparison.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sha1::{Digest, Sha1};

use super::notify::{Notify, NotifyType};
use super::{Action, Condition, Extension, Message};

/// SHA-1(SPIi | SPIr | IP | port) (RFC 7296 2.23). RustCrypto's SHA-1
/// uses the CPU's SHA instructions where there are some (ring's is
/// portable code, four times slower): a gateway hashes twice per roaming
/// IKE_SA.
pub fn hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; 20] {
    let mut ctx = Sha1::new();
    ctx.update(spi_i);
    ctx.update(spi_r);
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(a.octets()),
        IpAddr::V6(a) => ctx.update(a.octets()),
    }
    ctx.update(addr.port().to_be_bytes());
    ctx.finalize().into()
}

/// The last hashes one task computed: a response carries the hashes of
/// the request's two addresses, swapped, so a responder computes each once
/// per exchange.
#[derive(Clone, Debug, Default)]
pub struct Memo {
    last: [Option<MemoEntry>; 2],
}

/// SPIi, SPIr, address, and their hash.
type MemoEntry = ([u8; 8], [u8; 8], SocketAddr, [u8; 20]);

impl Memo {
    /// [`hash`], from the memo when the same input was hashed last.
    pub fn hash(&mut self, spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; 20] {
        let hit = self
            .last
            .iter()
            .flatten()
            .find(|(i, r, a, _)| i == spi_i && r == spi_r && *a == addr);
        if let Some((_, _, _, h)) = hit {
            return *h;
        }
        let h = hash(spi_i, spi_r, addr);
        self.last = [Some((*spi_i, *spi_r, addr, h)), self.last[0]];
        h
    }
}

/// Adds NAT-D notifies for `msg` (our address is `msg.src`). With forced
/// UDP encapsulation, or an unknown source address, the source hash is of
/// a made-up address so the peer always sees a NAT (as charon does,
/// RFC 3948 cannot be forced otherwise).
pub fn build(
    msg: &Message<'_>,
    force_encap: bool,
    fake_source: Ipv4Addr,
    memo: &mut Memo,
    out: &mut Vec<Action>,
) {
    let src = if force_encap || msg.src.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(fake_source), 0)
    } else {
        msg.src
    };
    for n in [
        Notify::NatDetectionSourceIp(memo.hash(&msg.spi_i, &msg.spi_r, src)),
        Notify::NatDetectionDestinationIp(memo.hash(&msg.spi_i, &msg.spi_r, msg.dst)),
    ] {
        let (ty, data) = super::notify::encode(&n);
        out.push(Action::AddNotify { ty, data });
    }
}

/// What the NAT-D notifies of a received message showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Both kinds of NAT-D notify were present.
    pub seen: bool,
    /// Our address (message destination) reached the peer unchanged.
    pub dst_matched: bool,
    /// The peer's address (message source) is the one it sent from.
    pub src_matched: bool,
    /// A NAT mapping of ours changed since the last check.
    pub mapping_changed: bool,
}

/// Checks the NAT-D notifies of a received message.
///
/// `hashes` are the decoded NAT-D notifies in message order. `check_mapping`
/// asks to compare an unmatched destination hash with the one remembered in
/// `mem` (the initiator of an INFORMATIONAL exchange, RFC 4555 3.8).
pub fn process(
    msg: &Message<'_>,
    hashes: &[(NotifyType, [u8; 20])],
    check_mapping: bool,
    mem: &mut super::SaMemory,
    memo: &mut Memo,
) -> Outcome {
    let dst_hash = memo.hash(&msg.spi_i, &msg.spi_r, msg.dst);
    let src_hash = memo.hash(&msg.spi_i, &msg.spi_r, msg.src);
    let mut o = Outcome::default();
    let (mut src_seen, mut dst_seen) = (false, false);
    for (ty, h) in hashes {
        match ty {
            NotifyType::NatDetectionDestinationIp => {
                dst_seen = true;
                o.dst_matched |= *h == dst_hash;
                if check_mapping && !o.dst_matched {
                    o.mapping_changed = mem.mapping_changed(*h);
                }
            }
            NotifyType::NatDetectionSourceIp => {
                src_seen = true;
                o.src_matched |= *h == src_hash;
            }
            _ => {}
        }
    }
    o.seen = src_seen && dst_seen;
    o
}

/// The IKE_SA changes that follow from an [`Outcome`] (charon's ike_natd).
pub fn apply(o: &Outcome, force_encap: bool, out: &mut Vec<Action>) {
    if !o.seen {
        return;
    }
    out.push(Action::EnableExtension(Extension::NatTraversal));
    out.push(Action::SetCondition {
        cond: Condition::NatHere,
        value: !o.dst_matched,
    });
    out.push(Action::SetCondition {
        cond: Condition::NatThere,
        value: !o.src_matched,
    });
    if o.dst_matched && o.src_matched && force_encap {
        out.push(Action::SetCondition {
            cond: Condition::NatFake,
            value: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: [u8; 20]) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Vectors computed independently of this code, with Python:
    /// hashlib.sha1(bytes.fromhex(spii) + bytes.fromhex(spir)
    ///   + socket.inet_pton(family, ip) + struct.pack('!H', port)).hexdigest()
    #[test]
    fn natd_hash_vectors() {
        let i = [1, 2, 3, 4, 5, 6, 7, 8];
        let r = [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
        assert_eq!(
            hex(hash(&i, &r, "198.18.1.2:4500".parse().unwrap())),
            "07da1f90c5ca94cf3c40daf4b7327a0bbe90810c"
        );
        assert_eq!(
            hex(hash(&i, &r, "198.18.1.1:500".parse().unwrap())),
            "48f195ccc93d318d98ca48220702c94e35494392"
        );
        let i6 = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];
        assert_eq!(
            hex(hash(&i6, &[0; 8], "[2001:db8::1]:4500".parse().unwrap())),
            "1f051d7db0ab27fae4fb471ef957ded558fd504e"
        );
    }

    #[test]
    fn the_memo_answers_as_the_hash_does() {
        let mut m = Memo::default();
        let (i, r) = ([1; 8], [2; 8]);
        let a: SocketAddr = "198.18.1.2:4500".parse().unwrap();
        let b: SocketAddr = "198.18.2.2:4500".parse().unwrap();
        for (spi_i, spi_r, addr) in [(i, r, a), (i, r, b), (i, r, a), (r, i, a), (i, r, b)] {
            assert_eq!(m.hash(&spi_i, &spi_r, addr), hash(&spi_i, &spi_r, addr));
        }
    }

    #[test]
    fn mapping_memory_semantics() {
        let mut m = super::super::SaMemory::default();
        assert!(
            m.mapping_changed([1; 20]),
            "no reference: suspected (RFC 4555 3.8)"
        );
        assert!(!m.mapping_changed([1; 20]));
        assert!(m.mapping_changed([2; 20]));
        assert!(!m.mapping_changed([2; 20]));
    }
}
