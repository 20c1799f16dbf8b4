//! COOKIE2 (RFC 4555 3.5, 4.2.5): random bytes in an INFORMATIONAL request
//! that the peer must echo, proving it received the request at that
//! address (return routability, 3.7).
//!
//! Never: compares cookies in variable time.

use ring::rand::SecureRandom;

use super::notify::NotifyData;
use super::COOKIE2_LEN;

/// A fresh cookie, or `None` if the random source failed.
pub fn generate(rng: &dyn SecureRandom) -> Option<NotifyData> {
    let mut c = NotifyData::from_elem(0, COOKIE2_LEN);
    rng.fill(&mut c).ok()?;
    Some(c)
}

/// Compares two cookies in time that depends only on their lengths.
pub fn matches(sent: &[u8], echoed: &[u8]) -> bool {
    if sent.len() != echoed.len() {
        return false;
    }
    let diff = sent
        .iter()
        .zip(echoed)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_random_and_of_the_sent_length() {
        let rng = ring::rand::SystemRandom::new();
        let a = generate(&rng).unwrap();
        let b = generate(&rng).unwrap();
        assert_eq!(a.len(), COOKIE2_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn comparison() {
        assert!(matches(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[1, 2, 3, 4, 5, 6, 7, 8]
        ));
        assert!(!matches(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[1, 2, 3, 4, 5, 6, 7, 9]
        ));
        assert!(!matches(&[1, 2, 3, 4, 5, 6, 7, 8], &[1, 2, 3, 4, 5, 6, 7]));
        assert!(!matches(&[1; 16], &[]));
    }
}
