//! The administrator's MOBIKE policy (`charon.plugins.mobike-rs.*`): NAT
//! prohibition (RFC 4555 3.9), when the responder checks return routability
//! (3.5, 3.7), which peer addresses are acceptable (3.5) and how many are
//! kept, and which paths are preferred (3.5, 3.10) with the hysteresis of
//! a return to a better one.
//!
//! Owns: parsing and validating each setting, with an error an
//! administrator can act on, and a one-line description for the log; and
//! [`OPTIONS`], the one description of every `charon.plugins.mobike-rs`
//! option (the adapter's too), from which the man page, the packaged
//! configuration file and the README's table are generated.
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
/// `liveness_timeout` default and upper bound.
pub const LIVENESS_TIMEOUT_DEFAULT_MS: u64 = 1_000;
pub const LIVENESS_TIMEOUT_MAX_MS: u64 = 3_600_000;
/// Most entries in `preference`.
pub const MAX_PREFERENCES: usize = 32;
/// Highest weight of a `preference` entry (0 is what an address no entry
/// matches weighs).
pub const PREFERENCE_WEIGHT_MAX: u16 = 1000;
/// Longest interface name pattern (IFNAMSIZ - 1).
pub const PREFERENCE_NAME_MAX: usize = 15;
/// `switch_back_delay` default and upper bound.
pub const SWITCH_BACK_DELAY_DEFAULT_MS: u64 = 500;
pub const SWITCH_BACK_DELAY_MAX_MS: u64 = 60_000;

/// One option of `charon.plugins.mobike-rs`, as the documentation states
/// it. Text marks code and values with backticks; blank-free paragraphs.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// Key under `charon.plugins.mobike-rs`.
    pub name: &'static str,
    /// The default as written in the configuration file ("" if empty).
    pub default: &'static str,
    /// What an empty default means, for the reader ("" if not empty).
    pub empty: &'static str,
    /// One line: the README's table.
    pub summary: &'static str,
    /// The full description: the man page and the configuration file.
    pub text: &'static [&'static str],
    /// Read again on `swanctl --reload-settings` (otherwise at start only).
    pub reloaded: bool,
    /// Parsed by [`Policy::set`]; the others are the adapter's.
    pub policy: bool,
}

/// Every option, in the order the documentation lists them. `make docs`
/// writes doc/mobike-rs.conf.5 (OPTIONS), packaging/mobike-rs.conf.in and
/// the README's table from it; tests/docs.rs fails when one is stale.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "load",
        default: "yes",
        empty: "",
        summary: "load the plugin; without it every MOBIKE task goes to charon's built-in MOBIKE",
        text: &["Load the plugin (`charon.plugins.mobike-rs.load`, or name `mobike-rs` in `charon.load`). Without it, the preloaded library hands every MOBIKE task to charon's built-in implementation and logs that once."],
        reloaded: false,
        policy: false,
    },
    OptionDoc {
        name: "mode",
        default: "rust",
        empty: "",
        summary: "`rust`: the Rust core runs MOBIKE tasks; `builtin`: charon's own (rollback)",
        text: &[
            "Which implementation runs MOBIKE tasks: `rust` (the Rust core) or `builtin` (charon's own, for comparison or an instant rollback). Any other value is logged and treated as `builtin`.",
            "A panic in the Rust core is caught, the task it happened in is abandoned (the IKE_SA stays), and new tasks use the built-in MOBIKE until charon is restarted.",
        ],
        reloaded: true,
        policy: false,
    },
    OptionDoc {
        name: "status_socket",
        default: "unix:///var/run/charon-mobike-rs.sock",
        empty: "",
        summary: "where `mobike-rs status` connects (mode 0600); empty: no status",
        text: &["The Unix socket on which the plugin serves `mobike-rs status`. It is created owned by root with mode 0600. An empty value disables it; a value that is not a `unix://` URI is logged and disables it too."],
        reloaded: false,
        policy: false,
    },
    OptionDoc {
        name: "nat_prohibition",
        default: "no",
        empty: "",
        summary: "send NO_NATS_ALLOWED (RFC 4555 3.9); a received one is always verified",
        text: &["RFC 4555 section 3.9: send NO_NATS_ALLOWED, with the addresses and ports actually used, in the first IKE_AUTH request and in every INFORMATIONAL request that can change addresses. A peer then refuses a path on which the addresses were modified (a NAT) with UNEXPECTED_NAT_DETECTED; mobike-rs retries that path twice with new requests, then leaves it out for 60 seconds and checks the other paths, or goes back to the path it had. A NO_NATS_ALLOWED received from the peer is always verified, whatever this option says."],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "return_routability",
        default: "before",
        empty: "",
        summary: "as responder, check the peer's new address `before` moving, `after`, or `off` (3.7)",
        text: &[
            "RFC 4555 section 3.7: when, as responder of an UPDATE_SA_ADDRESSES, to check that the initiator can receive at its new address. `before` sends an INFORMATIONAL request with a fresh COOKIE2 to the new address only and moves the IKE_SA and its IPsec SAs there when the answer matches; `after` moves first and checks then; `off` trusts the peer.",
            "With `before`, not even the IKE_SA moves ahead of the check: charon installs new CHILD_SAs at the IKE_SA's addresses, so a rekey would otherwise skip it. A check that is never answered ends like any unanswered request: charon closes the IKE_SA after its retransmissions.",
            "An IKE_SA without CHILD_SAs moves at once with `before` and `after` (it has no IPsec SA whose traffic could be sent to a third party, RFC 4555 section 5.3); its new path is checked when its first CHILD_SA comes up, after the fact for that CHILD_SA, as with `after`.",
        ],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "acceptable_peer_addresses",
        default: "",
        empty: "any",
        summary: "peer addresses, prefixes or ranges accepted (3.5); others get UNACCEPTABLE_ADDRESSES",
        text: &["RFC 4555 section 3.5: the peer addresses accepted, as a list of addresses, prefixes (`198.18.0.0/15`) and ranges (`198.18.1.1-198.18.1.9`), at most 64, separated by commas or spaces; empty accepts any. An UPDATE_SA_ADDRESSES from another address is answered with UNACCEPTABLE_ADDRESSES and changes nothing; announced addresses outside the list are not kept."],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "max_peer_addresses",
        default: "16",
        empty: "",
        summary: "most addresses kept per peer (1 to 32)",
        text: &["The most addresses kept per peer, 1 to 32; the rest of an announced list is dropped, with one log line."],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "fast_roam",
        default: "yes",
        empty: "",
        summary: "roam on the kernel's first event instead of charon's roam event 100 ms later",
        text: &[
            "Roam on the first kernel event (link, address or route changes, IPv4 and IPv6), read from the plugin's own rtnetlink socket, instead of waiting for charon's roam event, which kernel-netlink sends 100 ms after a change; further events within 50 ms give one more roam at the end of that window. Loopback, interfaces named `ipsec*`, those in `charon.interfaces_ignore`, link-local and tentative IPv6 addresses are ignored.",
            "The same socket tells when the plugin's cached route lookups are stale; with `no`, every route lookup asks the kernel. Read when charon starts; only with `mode = rust`.",
        ],
        reloaded: false,
        policy: false,
    },
    OptionDoc {
        name: "liveness_timeout",
        default: "1s",
        empty: "",
        summary: "check all paths, or behind a NAT the NAT mapping, when traffic stops this long; `0`: off",
        text: &[
            "On IKE_SAs this host initiated, two rules read from the CHILD_SAs' packet counters.",
            "When packets keep leaving and none arrive for this long, check all paths, each (local, peer) address pair the kernel routes, and move to the first that answers (behind a NAT the check also carries NAT-D). While the path stays silent the checks back off from 1 second to 60 seconds.",
            "Behind a NAT (the IKE_SA's NAT condition on this side), when packets were arriving and then none arrive and none leave for this long, check the NAT mapping: one INFORMATIONAL exchange with NAT_DETECTION_*_IP notifies on the current path (RFC 4555 section 3.8, as a MOBIKE DPD). If the peer saw us at another address or port than before, or the IKE_SA has no earlier NAT-D answer to compare with, an UPDATE_SA_ADDRESSES moves it to the new mapping. This recovers a road warrior that only receives, whose NAT mapped it to new ports, within about this timeout, with or without DPD. At most one check per stop of inbound traffic; checks back off from 1 second to 60 seconds (starting over after two minutes without one, or after a check that found a change), so a bursty download costs at most about one exchange a minute.",
            "An idle tunnel, and an IKE_SA without a NAT in front of this host, cost no packet. `0` disables both rules.",
        ],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "preference",
        default: "",
        empty: "none",
        summary: "which paths are better: `PATTERN=WEIGHT` by interface name or address range (3.10)",
        text: &[
            "Which paths are better, as a list of `PATTERN=WEIGHT` entries separated by commas, for example `eth*=100, wlan*=50, wwan0=10`. PATTERN is an address range as in `acceptable_peer_addresses` (an entry that starts with a digit or holds `:` or `/`), or else the name of the interface a local address is on, where `*` stands for any characters and `?` for one (at most 15 characters). WEIGHT is 0 to 1000, higher is better; the first entry that matches counts, an address no entry matches weighs 0. At most 32 entries. A path is better when its local address weighs more, or the same and its peer address more.",
            "When all paths are checked, copies of the request go to the better ones first; announced addresses (ADDITIONAL_*_ADDRESS) are listed best first, and a list that is only reordered is sent again.",
            "On IKE_SAs this host initiated, a better path that appears while the current one works is tested (RFC 4555 section 3.10) once it has been there for `switch_back_delay`: an INFORMATIONAL request goes to it alone, and if it answers the IKE_SA moves there with an UPDATE_SA_ADDRESSES; if it does not answer by the first retransmission, the request goes to the current path as well, an answer there keeps the IKE_SA where it is, and the better path is tested again after 10 seconds, doubling up to 5 minutes.",
            "Empty: no preference, paths as the kernel orders them.",
        ],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "switch_back_delay",
        default: "500ms",
        empty: "",
        summary: "how long a better path must have been there before it is tested and taken (0 to 60s)",
        text: &["How long a better path (see `preference`) must have been there before it is tested and taken; a path that goes away sooner is forgotten, so a flapping link does not make the tunnel flap. Each test costs one INFORMATIONAL exchange. At most 60 seconds; `0` tests at once."],
        reloaded: true,
        policy: true,
    },
    OptionDoc {
        name: "path_routing",
        default: "routes",
        empty: "",
        summary: "`routes`: checks and a moved tunnel leave through the interface owning the address; `probe`: checks only; `off`",
        text: &[
            "On a host without a routing rule per source address, the kernel may route packets from a second local address out of the interface of the first one (a more specific route, or a default route of lower metric); when that path is silently dead, a check of the second address would never be answered (RFC 4555 section 3.10 expects each address pair to be tested on its own path). A pair is misrouted when `ip route get PEER from LOCAL` names another interface than the one that owns LOCAL.",
            "`routes` (the default): a check (any MOBIKE request copy) on a misrouted pair is sent by the plugin itself from a raw UDP socket bound to the owning interface, with charon's IKE source port, bypassing IPsec policies; the answer arrives at charon's socket as usual. When the IKE_SA moves to a misrouted pair, the plugin first installs the rule `from LOCAL to PEER lookup 221` (priority 219, before charon's routing table 220) and the route to PEER in table 221 through the owning interface and its next hop (as the kernel answers for that interface), both of rtnetlink protocol 77, so the tunnel's outer traffic follows; they are removed when the IKE_SA moves again or goes away (a rekeyed IKE_SA keeps them) and when the plugin unloads, and every rule and route of protocol 77 is removed when the plugin starts (after a crash).",
            "`probe`: only the checks leave through the owning interface; no rule or route is installed (the moved tunnel then leaves as the kernel routes it). `off`: everything as the kernel routes it. Any other value is logged and treated as `probe`. Unless `off`, charon keeps the capability CAP_NET_RAW. Read when charon starts.",
        ],
        reloaded: false,
        policy: false,
    },
];

/// What one `preference` entry matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreferencePattern {
    /// An interface name, `*` any run of characters, `?` one character.
    Interface(String),
    /// Addresses (ours or the peer's).
    Range(AddressRange),
}

/// One `preference` entry: `PATTERN=WEIGHT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preference {
    pub pattern: PreferencePattern,
    pub weight: u16,
}

impl Preference {
    /// `PATTERN=WEIGHT`: an entry starting with a digit or holding `:` or
    /// `/` is an address range (as in `acceptable_peer_addresses`),
    /// anything else an interface name pattern.
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        let bad = |why: &str| SettingError(format!("'{s}': {why}"));
        let (pattern, weight) = s
            .rsplit_once('=')
            .ok_or_else(|| bad("expected PATTERN=WEIGHT"))?;
        let (pattern, weight) = (pattern.trim(), weight.trim());
        let weight = weight
            .parse::<u16>()
            .ok()
            .filter(|w| *w <= PREFERENCE_WEIGHT_MAX)
            .ok_or_else(|| {
                bad(&format!(
                    "the weight must be a number from 0 to {PREFERENCE_WEIGHT_MAX}"
                ))
            })?;
        let address =
            pattern.starts_with(|c: char| c.is_ascii_digit()) || pattern.contains([':', '/']);
        let pattern = if address {
            PreferencePattern::Range(AddressRange::parse(pattern)?)
        } else if pattern.is_empty()
            || pattern.len() > PREFERENCE_NAME_MAX
            || pattern.contains(|c: char| c.is_whitespace() || c == ',' || c == '=')
        {
            return Err(bad(&format!(
                "not an address range nor an interface name pattern of at most {PREFERENCE_NAME_MAX} characters"
            )));
        } else {
            PreferencePattern::Interface(pattern.to_string())
        };
        Ok(Preference { pattern, weight })
    }

    fn matches(&self, ip: IpAddr, iface: Option<&str>) -> bool {
        match &self.pattern {
            PreferencePattern::Range(r) => r.contains(ip),
            PreferencePattern::Interface(p) => {
                iface.is_some_and(|n| glob(p.as_bytes(), n.as_bytes()))
            }
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            PreferencePattern::Interface(p) => write!(f, "{p}={}", self.weight),
            PreferencePattern::Range(r) => write!(f, "{r}={}", self.weight),
        }
    }
}

/// Whether `name` matches `pattern` (`*`: any run, `?`: one character).
/// Iterative, with one point to go back to: linear in practice, bounded
/// by the lengths (both at most 15 here).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == b'?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// A duration as strongswan.conf writes them: `1.5s`, `500ms`, `2` (seconds).
fn parse_duration_ms(v: &str) -> Option<u64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1000.0)
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x >= 0.0).then(|| (x * scale).round() as u64)
}

/// Who runs charon's MOBIKE tasks (`charon.plugins.mobike-rs.mode`): the
/// Rust core, or charon's built-in MOBIKE (the rollback, charon's own
/// behaviour unchanged). Read once when the plugin loads and on reload: a
/// gateway creates a task per roaming IKE_SA, and a settings lookup each
/// time is its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Rust,
    Builtin,
}

impl Mode {
    /// The value an unset `mode` means.
    pub const DEFAULT: &'static str = "rust";

    /// `mode` as set (`None`: unset, which means rust). An unknown value
    /// means builtin, with the error to log: a typo must never run code
    /// the administrator did not ask for.
    pub fn from_setting(value: Option<&str>) -> (Mode, Option<SettingError>) {
        match value.unwrap_or(Mode::DEFAULT) {
            "rust" => (Mode::Rust, None),
            "builtin" => (Mode::Builtin, None),
            other => (
                Mode::Builtin,
                Some(SettingError(format!(
                    "unknown mode '{other}' (expected 'rust' or 'builtin'), using the built-in \
                     MOBIKE"
                ))),
            ),
        }
    }
}

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
    /// Packets leave but none arrive for this long: check all paths
    /// (milliseconds; 0 disables).
    pub liveness_timeout_ms: u64,
    /// Path preference, first match wins; empty: none.
    pub preference: Vec<Preference>,
    /// How long a better path must have been there before it is tested
    /// and taken (milliseconds; 0: at once).
    pub switch_back_delay_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            nat_prohibition: false,
            return_routability: ReturnRoutability::Before,
            acceptable_peer_addresses: Vec::new(),
            max_peer_addresses: PEER_ADDRESSES_DEFAULT,
            liveness_timeout_ms: LIVENESS_TIMEOUT_DEFAULT_MS,
            preference: Vec::new(),
            switch_back_delay_ms: SWITCH_BACK_DELAY_DEFAULT_MS,
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
    /// Every setting of the policy (`charon.plugins.mobike-rs.<key>`), in
    /// the order the caller applies them and the log describes them.
    pub const KEYS: [&'static str; 7] = [
        "nat_prohibition",
        "return_routability",
        "acceptable_peer_addresses",
        "max_peer_addresses",
        "liveness_timeout",
        "preference",
        "switch_back_delay",
    ];

    /// Whether a peer address is acceptable (RFC 4555 3.5).
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.acceptable_peer_addresses.is_empty()
            || self
                .acceptable_peer_addresses
                .iter()
                .any(|r| r.contains(ip))
    }

    /// The weight of an address (ours, on interface `iface` if known, or
    /// the peer's): the first `preference` entry that matches, 0 if none.
    pub fn weight(&self, ip: IpAddr, iface: Option<&str>) -> u16 {
        self.preference
            .iter()
            .find(|p| p.matches(ip, iface))
            .map_or(0, |p| p.weight)
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
            "liveness_timeout" => {
                self.liveness_timeout_ms = parse_duration_ms(value)
                    .filter(|ms| *ms <= LIVENESS_TIMEOUT_MAX_MS)
                    .ok_or_else(|| bad("a duration such as 1s or 500ms, at most 1h; 0 disables"))?;
            }
            "preference" => {
                let mut entries = Vec::new();
                for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                    if entries.len() >= MAX_PREFERENCES {
                        return Err(bad(&format!("at most {MAX_PREFERENCES} entries")));
                    }
                    let e = Preference::parse(part.trim()).map_err(|e| {
                        SettingError(format!("{key}: {e}; keeping {}", self.show("preference")))
                    })?;
                    entries.push(e);
                }
                self.preference = entries;
            }
            "switch_back_delay" => {
                self.switch_back_delay_ms = parse_duration_ms(value)
                    .filter(|ms| *ms <= SWITCH_BACK_DELAY_MAX_MS)
                    .ok_or_else(|| {
                        bad("a duration such as 0.5s or 500ms, at most 60s; 0: at once")
                    })?;
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
            "liveness_timeout" => self.liveness_timeout_ms = d.liveness_timeout_ms,
            "preference" => self.preference = d.preference,
            "switch_back_delay" => self.switch_back_delay_ms = d.switch_back_delay_ms,
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
            "liveness_timeout" if self.liveness_timeout_ms == 0 => "0 (off)".into(),
            "liveness_timeout" => format!("{}ms", self.liveness_timeout_ms),
            "preference" if self.preference.is_empty() => "none".into(),
            "preference" => self
                .preference
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "switch_back_delay" => format!("{}ms", self.switch_back_delay_ms),
            _ => String::new(),
        }
    }

    /// One line for the daemon's log.
    pub fn describe(&self) -> String {
        Policy::KEYS
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
    fn mode_unset_is_rust_and_an_unknown_one_is_builtin_with_a_reason() {
        assert_eq!(Mode::from_setting(None), (Mode::Rust, None));
        assert_eq!(Mode::from_setting(Some("rust")), (Mode::Rust, None));
        assert_eq!(Mode::from_setting(Some("builtin")), (Mode::Builtin, None));
        let (m, e) = Mode::from_setting(Some("Rust "));
        assert_eq!(m, Mode::Builtin);
        assert_eq!(
            e.unwrap().0,
            "unknown mode 'Rust ' (expected 'rust' or 'builtin'), using the built-in MOBIKE"
        );
    }

    #[test]
    fn defaults_follow_the_rfc() {
        let p = Policy::default();
        assert!(!p.nat_prohibition);
        assert_eq!(p.return_routability, ReturnRoutability::Before);
        assert!(p.accepts("203.0.113.9".parse().unwrap()));
        assert_eq!(p.max_peer_addresses, 16);
        assert_eq!(
            p.describe(),
            "nat_prohibition=no return_routability=before acceptable_peer_addresses=any max_peer_addresses=16 liveness_timeout=1000ms preference=none switch_back_delay=500ms"
        );
        assert_eq!(p.weight("198.18.1.2".parse().unwrap(), Some("eth0")), 0);
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
            ("liveness_timeout", "soon"),
            ("liveness_timeout", "-1s"),
            ("liveness_timeout", "2h"),
            ("preference", "eth0"),
            ("preference", "eth0=1001"),
            ("preference", "eth0=-1"),
            ("preference", "eth0=high"),
            ("preference", "=5"),
            ("preference", "a-very-long-interface-name=5"),
            ("preference", "198.18.1.0/33=5"),
            ("preference", "198.18.1.9-198.18.1.1=5"),
            ("preference", "2001:db8::1-198.18.1.1=5"),
            ("preference", "eth0=10, wlan 0=5"),
            ("switch_back_delay", "later"),
            ("switch_back_delay", "61s"),
            ("switch_back_delay", "-0.5s"),
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
        let many = (0..33)
            .map(|i| format!("eth{i}=1"))
            .collect::<Vec<_>>()
            .join(",");
        let e = p.set("preference", &many).unwrap_err();
        assert!(e.0.contains("at most 32"), "{e}");
        assert_eq!(p, before);
    }

    #[test]
    fn preference_weighs_by_interface_pattern_and_address_range() {
        let mut p = Policy::default();
        p.set(
            "preference",
            "eth*=100, wlan0 = 50, 198.18.2.0/24=40, 2001:db8::5-2001:db8::9=30, ww?n*=20",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(p.weight(ip("198.18.1.2"), Some("eth1")), 100);
        assert_eq!(p.weight(ip("198.18.1.2"), Some("eth")), 100);
        assert_eq!(p.weight(ip("198.18.1.2"), Some("wlan0")), 50);
        assert_eq!(p.weight(ip("198.18.1.2"), Some("wlan1")), 0);
        // the first match wins: eth* before the range
        assert_eq!(p.weight(ip("198.18.2.7"), Some("eth2")), 100);
        assert_eq!(p.weight(ip("198.18.2.7"), Some("usb0")), 40);
        assert_eq!(p.weight(ip("198.18.2.7"), None), 40);
        assert_eq!(p.weight(ip("2001:db8::7"), None), 30);
        assert_eq!(p.weight(ip("2001:db8::a"), None), 0);
        assert_eq!(p.weight(ip("198.18.3.1"), Some("wwan0")), 20);
        assert_eq!(p.weight(ip("198.18.3.1"), Some("wan0")), 0);
        // an interface pattern never matches a peer address (no interface)
        assert_eq!(p.weight(ip("198.18.1.1"), None), 0);
        assert_eq!(
            p.show("preference"),
            "eth*=100,wlan0=50,198.18.2.0-198.18.2.255=40,2001:db8::5-2001:db8::9=30,ww?n*=20"
        );
        p.set("preference", "").unwrap();
        assert!(p.preference.is_empty());
        assert_eq!(p.show("preference"), "none");
        for (pat, name, want) in [
            ("*", "", true),
            ("*a*b", "xxaxxb", true),
            ("*a*b", "xxaxxbc", false),
            ("rw-?", "rw-a", true),
            ("rw-?", "rw-ab", false),
            ("a*", "b", false),
        ] {
            assert_eq!(glob(pat.as_bytes(), name.as_bytes()), want, "{pat} {name}");
        }
    }

    #[test]
    fn switch_back_delay_takes_durations() {
        let mut p = Policy::default();
        assert_eq!(p.switch_back_delay_ms, 500);
        for (v, ms) in [
            ("1.5s", 1500),
            ("250ms", 250),
            ("2", 2000),
            ("0", 0),
            ("60s", 60_000),
        ] {
            p.set("switch_back_delay", v).unwrap();
            assert_eq!(p.switch_back_delay_ms, ms, "{v}");
        }
        p.reset("switch_back_delay").unwrap();
        p.set("preference", "rw-a=100").unwrap();
        p.reset("preference").unwrap();
        assert_eq!(p, Policy::default());
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
        for (v, ms) in [("1.5s", 1500), ("250ms", 250), ("2", 2000), ("0", 0)] {
            p.set("liveness_timeout", v).unwrap();
            assert_eq!(p.liveness_timeout_ms, ms, "{v}");
        }
        for k in [
            "nat_prohibition",
            "return_routability",
            "max_peer_addresses",
            "liveness_timeout",
        ] {
            p.reset(k).unwrap();
        }
        assert_eq!(p, Policy::default());
        assert!(p.reset("nope").is_err());
    }

    #[test]
    fn the_documented_options_are_the_policy_and_its_defaults() {
        let mut p = Policy::default();
        for o in OPTIONS {
            let parsed = p.set(o.name, o.default);
            assert_eq!(parsed.is_ok(), o.policy, "{}: {parsed:?}", o.name);
            assert_eq!(o.default.is_empty(), !o.empty.is_empty(), "{}", o.name);
            assert!(!o.summary.contains('|'), "{}: a table cell", o.name);
        }
        assert_eq!(
            p,
            Policy::default(),
            "a documented default is not the default"
        );
        let description = p.describe();
        let described: Vec<&str> = description
            .split(' ')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        let documented: Vec<&str> = OPTIONS
            .iter()
            .filter(|o| o.policy)
            .map(|o| o.name)
            .collect();
        assert_eq!(described, documented);
    }
}
