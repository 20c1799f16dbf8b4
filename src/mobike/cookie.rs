//! COOKIE2 (RFC 4555 3.5): random bytes in an INFORMATIONAL request that
//! the peer must echo, proving it received the request at that address.
//!
//! Never: compares cookies in variable time.
