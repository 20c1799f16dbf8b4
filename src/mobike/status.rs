//! What `mobike-rs status` shows: per-IKE_SA counters, the last path update
//! and why it happened, probes in flight, and the rendering of all IKE_SAs
//! as text or JSON.
//!
//! Owns: [`SaStats`] (kept in [`SaMemory`](super::SaMemory), since charon has
//! no place for it) and how it is derived from the core's own decisions.
//!
//! Never: decides anything about the protocol. Stats are read off the
//! actions the task already returned, so showing them cannot change what
//! MOBIKE does. Time comes in as the caller's monotonic milliseconds.

use std::fmt::{self, Write};
use std::net::{IpAddr, SocketAddr};

use super::addr::show;
use super::{Action, NotifyType, SaView, Status};

/// Why the IKE_SA's path (or its CHILD_SAs) was updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateReason {
    /// The peer sent UPDATE_SA_ADDRESSES from a new path (RFC 4555 3.5).
    PeerUpdate,
    /// As original initiator we followed a responder that used another
    /// address of its list.
    FollowedPeer,
    /// Our path check was answered on another path (RFC 4555 3.5).
    PathCheckAnswered,
    /// NAT-D showed that a NAT in front of us maps us differently now.
    NatMappingChanged,
    /// The NAT state changed with the new path (CHILD_SAs only).
    NatStateAfterUpdate,
    /// The peer's UPDATE_SA_ADDRESSES, once the return routability check
    /// of its new path was answered (RFC 4555 3.5, 3.7).
    ReturnRoutabilityConfirmed,
    /// The peer refused the new path; back to the one before.
    PathRefused,
    /// A better path (`preference`) answered its test (RFC 4555 3.10).
    PreferredPath,
    /// The current path lost its route and the kernel routes one other
    /// path only: moved to it without a check (RFC 4555 3.5).
    OnlyPathLeft,
}

/// Each reason's stable name (JSON) and text (log, status), from one table;
/// the log lines are made at compile time, as a gateway logs one per
/// roaming IKE_SA.
macro_rules! update_reasons {
    ($($reason:ident => $name:literal, $text:literal;)*) => {
        impl UpdateReason {
            /// Stable name, used in JSON.
            pub fn name(self) -> &'static str {
                match self {
                    $(UpdateReason::$reason => $name,)*
                }
            }

            /// The log line of an update that moves the IKE_SA (the
            /// addresses are in charon's own line).
            pub fn updating_addresses(self) -> &'static str {
                match self {
                    $(UpdateReason::$reason => concat!("updating addresses (", $text, ")"),)*
                }
            }

            /// The log line of an update of the CHILD_SAs only.
            pub fn updating_child_sas(self) -> &'static str {
                match self {
                    $(UpdateReason::$reason => concat!("updating CHILD_SAs (", $text, ")"),)*
                }
            }

            fn text(self) -> &'static str {
                match self {
                    $(UpdateReason::$reason => $text,)*
                }
            }

            #[cfg(test)]
            const ALL: &'static [UpdateReason] = &[$(UpdateReason::$reason),*];
        }
    };
}

update_reasons! {
    PeerUpdate => "peer-update", "peer's UPDATE_SA_ADDRESSES";
    FollowedPeer => "followed-peer", "peer answered from another address";
    PathCheckAnswered => "path-check-answered", "path check answered";
    NatMappingChanged => "nat-mapping-changed", "NAT mapping changed";
    NatStateAfterUpdate => "nat-state-after-update", "NAT state after update";
    ReturnRoutabilityConfirmed => "return-routability-confirmed",
        "peer's UPDATE_SA_ADDRESSES, return routability confirmed";
    PathRefused => "path-refused", "peer refused the new path";
    PreferredPath => "preferred-path", "preferred path answered its test";
    OnlyPathLeft => "only-path-left", "the only path left";
}

impl fmt::Display for UpdateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// The last update of an IKE_SA's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastUpdate {
    /// Caller's monotonic clock, milliseconds.
    pub at_ms: u64,
    pub reason: UpdateReason,
    /// Path before and after: (ours, the peer's).
    pub from: (SocketAddr, SocketAddr),
    pub to: (SocketAddr, SocketAddr),
}

/// Counters of one IKE_SA. They only grow (saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// UPDATE_SA_ADDRESSES requests we built.
    pub updates_sent: u64,
    /// UPDATE_SA_ADDRESSES requests of the peer that moved us.
    pub updates_received: u64,
    /// Times the IKE_SA's path changed.
    pub path_changes: u64,
    /// Packets sent to check paths (RFC 4555 3.5).
    pub probes_sent: u64,
    /// NAT mapping changes detected.
    pub nat_mapping_changes: u64,
    /// MOBIKE exchanges that failed and closed the IKE_SA (e.g. a COOKIE2
    /// mismatch).
    pub exchanges_failed: u64,
}

impl Counters {
    /// (JSON key, text label, value) of each counter, in display order.
    fn named(&self) -> [(&'static str, &'static str, u64); 6] {
        [
            ("updates_sent", "updates sent", self.updates_sent),
            (
                "updates_received",
                "updates received",
                self.updates_received,
            ),
            ("path_changes", "path changes", self.path_changes),
            ("probes_sent", "probes sent", self.probes_sent),
            (
                "nat_mapping_changes",
                "NAT mapping changes",
                self.nat_mapping_changes,
            ),
            (
                "exchanges_failed",
                "failed exchanges",
                self.exchanges_failed,
            ),
        ]
    }
}

/// Which call of the task the actions came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Build,
    Process,
    /// A (re)transmission; `probing` if it checked paths.
    Transmit {
        probing: bool,
    },
}

/// What the status shows of one IKE_SA beyond what charon holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaStats {
    pub last_update: Option<LastUpdate>,
    /// Paths the request in flight was sent on while checking paths.
    pub probes_in_flight: u32,
    pub counters: Counters,
}

impl SaStats {
    /// Reads the decisions of one call into the stats.
    pub fn record(&mut self, sa: &SaView<'_>, call: Call, actions: &[Action], status: Status) {
        let c = &mut self.counters;
        match call {
            Call::Transmit { probing } => {
                let sends = actions
                    .iter()
                    .filter(|a| matches!(a, Action::Send { .. }))
                    .count() as u32;
                self.probes_in_flight = if probing { sends } else { 0 };
                if probing {
                    c.probes_sent = c.probes_sent.saturating_add(u64::from(sends));
                }
            }
            // An answer (or a request of the peer) ends the probe round.
            Call::Process => self.probes_in_flight = 0,
            Call::Build => {}
        }
        for a in actions {
            match a {
                Action::AddNotify { ty, .. }
                    if call == Call::Build && *ty == NotifyType::UpdateSaAddresses =>
                {
                    c.updates_sent = c.updates_sent.saturating_add(1);
                }
                Action::UpdateHosts {
                    me, other, reason, ..
                } => {
                    let from = (sa.my_host, sa.other_host);
                    let to = (me.unwrap_or(sa.my_host), other.unwrap_or(sa.other_host));
                    if *reason == UpdateReason::NatMappingChanged {
                        c.nat_mapping_changes = c.nat_mapping_changes.saturating_add(1);
                    }
                    if matches!(
                        reason,
                        UpdateReason::PeerUpdate | UpdateReason::ReturnRoutabilityConfirmed
                    ) {
                        c.updates_received = c.updates_received.saturating_add(1);
                    }
                    if to != from {
                        c.path_changes = c.path_changes.saturating_add(1);
                    }
                    if to != from || *reason == UpdateReason::NatMappingChanged {
                        self.last_update = Some(LastUpdate {
                            at_ms: sa.now_ms,
                            reason: *reason,
                            from,
                            to,
                        });
                    }
                }
                _ => {}
            }
        }
        if status == Status::Failed {
            c.exchanges_failed = c.exchanges_failed.saturating_add(1);
        }
    }
}

/// One IKE_SA as the status shows it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The connection's name (charon's IKE_SA name).
    pub name: String,
    pub unique_id: u32,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub original_initiator: bool,
    pub mobike_configured: bool,
    pub mobike_supported: bool,
    pub nat_here: bool,
    pub nat_there: bool,
    pub force_encap: bool,
    /// The current path.
    pub my_host: SocketAddr,
    pub other_host: SocketAddr,
    /// Our address set and the peer's.
    pub local_addresses: Vec<IpAddr>,
    pub peer_addresses: Vec<SocketAddr>,
    /// None: no MOBIKE task has run on it yet.
    pub stats: Option<SaStats>,
}

impl Entry {
    pub fn new(sa: &SaView<'_>, name: &str, stats: Option<SaStats>) -> Self {
        Entry {
            name: name.chars().take(MAX_NAME_CHARS).collect(),
            unique_id: sa.unique_id,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            original_initiator: sa.original_initiator,
            mobike_configured: sa.mobike_configured,
            mobike_supported: sa.mobike_supported,
            nat_here: sa.nat_here,
            nat_there: sa.nat_there,
            force_encap: sa.force_encap,
            my_host: sa.my_host,
            other_host: sa.other_host,
            local_addresses: sa.local_addresses.to_vec(),
            peer_addresses: sa.peer_addresses.to_vec(),
            stats,
        }
    }
}

/// Longest connection name shown (names come from the configuration).
const MAX_NAME_CHARS: usize = 128;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(16), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn nat_words(e: &Entry) -> Vec<&'static str> {
    let mut w = Vec::new();
    if e.nat_here {
        w.push("local");
    }
    if e.nat_there {
        w.push("remote");
    }
    if e.force_encap {
        w.push("forced-encap");
    }
    w
}

fn ago(now_ms: u64, at_ms: u64) -> String {
    let d = now_ms.saturating_sub(at_ms);
    format!("{}.{:03} s ago", d / 1000, d % 1000)
}

/// Human-readable status of all IKE_SAs.
pub fn render_text(entries: &[Entry], now_ms: u64) -> String {
    let mut s = String::new();
    if entries.is_empty() {
        s.push_str("no IKE_SAs\n");
        return s;
    }
    for e in entries {
        let _ = writeln!(
            s,
            "{}[{}]: SPIs {}_i {}_r, {}",
            e.name,
            e.unique_id,
            hex(&e.spi_i),
            hex(&e.spi_r),
            if e.original_initiator {
                "original initiator"
            } else {
                "original responder"
            }
        );
        let mobike = match (e.mobike_supported, e.mobike_configured) {
            (true, _) => "negotiated",
            (false, true) => "not negotiated (peer did not agree)",
            (false, false) => "disabled in the connection",
        };
        let _ = writeln!(s, "  MOBIKE: {mobike}");
        let _ = writeln!(s, "  path: {} - {}", show(e.my_host), show(e.other_host));
        let locals: Vec<String> = e.local_addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "  local addresses: {}", list_or_none(&locals));
        let peers: Vec<String> = e
            .peer_addresses
            .iter()
            .map(|a| show(*a).to_string())
            .collect();
        let _ = writeln!(s, "  peer addresses: {}", list_or_none(&peers));
        let nat = nat_words(e);
        let _ = writeln!(
            s,
            "  NAT: {}",
            if nat.is_empty() {
                "none".to_string()
            } else {
                nat.join(", ")
            }
        );
        match &e.stats {
            None => {
                let _ = writeln!(s, "  no MOBIKE task has run on this IKE_SA");
            }
            Some(st) => {
                match &st.last_update {
                    None => {
                        let _ = writeln!(s, "  last update: none");
                    }
                    Some(u) => {
                        let _ = writeln!(
                            s,
                            "  last update: {} ({}): {} - {} -> {} - {}",
                            ago(now_ms, u.at_ms),
                            u.reason,
                            show(u.from.0),
                            show(u.from.1),
                            show(u.to.0),
                            show(u.to.1)
                        );
                    }
                }
                let _ = writeln!(s, "  probes in flight: {}", st.probes_in_flight);
                let counters: Vec<String> = st
                    .counters
                    .named()
                    .iter()
                    .map(|(_, text, v)| format!("{text} {v}"))
                    .collect();
                let _ = writeln!(s, "  counters: {}", counters.join(", "));
            }
        }
    }
    s
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A JSON string literal (RFC 8259 escaping).
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let v: Vec<String> = items.iter().map(|i| json_str(&f(i))).collect();
    format!("[{}]", v.join(","))
}

fn json_path(p: (SocketAddr, SocketAddr)) -> String {
    format!(
        "{{\"local\":{},\"remote\":{}}}",
        json_str(&p.0.to_string()),
        json_str(&p.1.to_string())
    )
}

/// Status of all IKE_SAs as one JSON document (one line, then a newline).
/// Addresses are "ip:port" ("[ip]:port" for IPv6) or plain "ip".
pub fn render_json(entries: &[Entry], now_ms: u64) -> String {
    let mut s = String::from("{\"ike_sas\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"name\":{},\"unique_id\":{},\"spi_i\":\"{}\",\"spi_r\":\"{}\",\
             \"original_initiator\":{},\"mobike\":{{\"configured\":{},\"negotiated\":{}}},\
             \"path\":{},\"local_addresses\":{},\"peer_addresses\":{},\"nat\":{}",
            json_str(&e.name),
            e.unique_id,
            hex(&e.spi_i),
            hex(&e.spi_r),
            e.original_initiator,
            e.mobike_configured,
            e.mobike_supported,
            json_path((e.my_host, e.other_host)),
            json_list(&e.local_addresses, |a| a.to_string()),
            json_list(&e.peer_addresses, |a| a.to_string()),
            json_list(&nat_words(e), |w| w.to_string()),
        );
        match &e.stats {
            None => s.push_str(",\"last_update\":null,\"probes_in_flight\":0,\"counters\":null"),
            Some(st) => {
                match &st.last_update {
                    None => s.push_str(",\"last_update\":null"),
                    Some(u) => {
                        let _ = write!(
                            s,
                            ",\"last_update\":{{\"ago_ms\":{},\"reason\":{},\"from\":{},\"to\":{}}}",
                            now_ms.saturating_sub(u.at_ms),
                            json_str(u.reason.name()),
                            json_path(u.from),
                            json_path(u.to)
                        );
                    }
                }
                let counters: Vec<String> = st
                    .counters
                    .named()
                    .iter()
                    .map(|(key, _, v)| format!("\"{key}\":{v}"))
                    .collect();
                let _ = write!(
                    s,
                    ",\"probes_in_flight\":{},\"counters\":{{{}}}",
                    st.probes_in_flight,
                    counters.join(",")
                );
            }
        }
        s.push('}');
    }
    s.push_str("]}\n");
    s
}

/// What a client asked for on the status socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Text,
    Json,
}

/// Parses one request line ("status text" or "status json").
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
    match text.trim() {
        "status text" | "status" => Ok(Request::Text),
        "status json" => Ok(Request::Json),
        other => Err(format!(
            "unknown request '{}' (expected 'status text' or 'status json')",
            other.chars().take(64).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobike::UpdateForce;

    fn sa<'a>(peers: &'a [SocketAddr], locals: &'a [IpAddr]) -> SaView<'a> {
        SaView {
            unique_id: 7,
            spi_i: [0xab; 8],
            nat_there: true,
            route_current: None,
            now_ms: 10_000,
            ..crate::mobike::test_view(peers, locals, &[])
        }
    }

    #[test]
    fn each_reason_has_its_own_name_and_log_lines_made_of_its_text() {
        let names: std::collections::HashSet<_> =
            UpdateReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), UpdateReason::ALL.len());
        for r in UpdateReason::ALL {
            assert_eq!(r.updating_addresses(), format!("updating addresses ({r})"));
            assert_eq!(r.updating_child_sas(), format!("updating CHILD_SAs ({r})"));
        }
        assert_eq!(
            UpdateReason::PeerUpdate.updating_addresses(),
            "updating addresses (peer's UPDATE_SA_ADDRESSES)"
        );
    }

    #[test]
    fn updates_probes_and_failures_are_counted_from_the_actions() {
        let s = sa(&[], &[]);
        let mut st = SaStats::default();
        let probe = |p: &str| Action::Send {
            src: p.parse().unwrap(),
            dst: "198.18.1.1:4500".parse().unwrap(),
        };
        st.record(
            &s,
            Call::Transmit { probing: true },
            &[probe("198.18.1.2:4500"), probe("198.18.2.2:4500")],
            Status::NeedMore,
        );
        assert_eq!(st.probes_in_flight, 2);
        assert_eq!(st.counters.probes_sent, 2);
        // A plain retransmission on the current path is no probe.
        st.record(
            &s,
            Call::Transmit { probing: false },
            &[probe("198.18.1.2:4500")],
            Status::NeedMore,
        );
        assert_eq!(st.probes_in_flight, 0);
        assert_eq!(st.counters.probes_sent, 2);

        let moved = Action::UpdateHosts {
            me: Some("198.18.2.2:4500".parse().unwrap()),
            other: None,
            force: UpdateForce::All,
            reason: UpdateReason::PathCheckAnswered,
        };
        st.record(&s, Call::Process, &[moved], Status::NeedMore);
        let u = st.last_update.unwrap();
        assert_eq!(u.reason, UpdateReason::PathCheckAnswered);
        assert_eq!(u.to.0, "198.18.2.2:4500".parse::<SocketAddr>().unwrap());
        assert_eq!(u.at_ms, 10_000);
        assert_eq!(st.counters.path_changes, 1);

        let update = Action::AddNotify {
            ty: NotifyType::UpdateSaAddresses,
            data: Default::default(),
        };
        st.record(&s, Call::Build, &[update], Status::NeedMore);
        assert_eq!(st.counters.updates_sent, 1);
        st.record(&s, Call::Process, &[], Status::Failed);
        assert_eq!(st.counters.exchanges_failed, 1);
    }

    #[test]
    fn a_children_only_update_is_no_path_change() {
        let s = sa(&[], &[]);
        let mut st = SaStats::default();
        let children = Action::UpdateHosts {
            me: None,
            other: None,
            force: UpdateForce::Children,
            reason: UpdateReason::NatStateAfterUpdate,
        };
        st.record(&s, Call::Process, &[children], Status::Success);
        assert_eq!(st.last_update, None);
        assert_eq!(st.counters.path_changes, 0);
    }

    #[test]
    fn json_and_text_show_addresses_path_nat_and_last_update() {
        let peers: [SocketAddr; 2] = [
            "198.18.1.1:4500".parse().unwrap(),
            "[2001:db8::1]:4500".parse().unwrap(),
        ];
        let locals: [IpAddr; 2] = ["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()];
        let s = sa(&peers, &locals);
        let mut st = SaStats::default();
        st.last_update = Some(LastUpdate {
            at_ms: 8_500,
            reason: UpdateReason::PeerUpdate,
            from: (
                "198.18.2.2:4500".parse().unwrap(),
                "198.18.1.1:4500".parse().unwrap(),
            ),
            to: (s.my_host, s.other_host),
        });
        let e = Entry::new(&s, "rw \"lab\"", Some(st));
        let j = render_json(&[e.clone()], 10_000);
        assert!(j.starts_with("{\"ike_sas\":[{\"name\":\"rw \\\"lab\\\"\",\"unique_id\":7,"));
        assert!(j.contains("\"spi_i\":\"abababababababab\""));
        assert!(
            j.contains("\"path\":{\"local\":\"198.18.1.2:4500\",\"remote\":\"198.18.1.1:4500\"}")
        );
        assert!(j.contains("\"peer_addresses\":[\"198.18.1.1:4500\",\"[2001:db8::1]:4500\"]"));
        assert!(j.contains("\"local_addresses\":[\"198.18.1.2\",\"198.18.2.2\"]"));
        assert!(j.contains("\"nat\":[\"remote\"]"));
        assert!(j.contains("\"last_update\":{\"ago_ms\":1500,\"reason\":\"peer-update\""));
        assert!(j.ends_with("}]}\n"));
        let t = render_text(&[e], 10_000);
        assert!(t.contains("MOBIKE: negotiated"));
        assert!(t.contains("path: 198.18.1.2[4500] - 198.18.1.1[4500]"));
        assert!(t.contains("last update: 1.500 s ago (peer's UPDATE_SA_ADDRESSES)"));
        assert!(t.contains("NAT: remote"));
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        assert_eq!(json_str("a\nb\u{1}\\"), "\"a\\u000ab\\u0001\\\\\"");
        let s = sa(&[], &[]);
        let long = "x".repeat(1000);
        assert_eq!(Entry::new(&s, &long, None).name.len(), MAX_NAME_CHARS);
        assert_eq!(render_json(&[], 0), "{\"ike_sas\":[]}\n");
        assert_eq!(render_text(&[], 0), "no IKE_SAs\n");
    }

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(parse_request(b"status json\n"), Ok(Request::Json));
        assert_eq!(parse_request(b"status text\n"), Ok(Request::Text));
        assert!(parse_request(b"status yaml\n").is_err());
        assert!(parse_request(&[0xff, 0xfe]).is_err());
    }
}
