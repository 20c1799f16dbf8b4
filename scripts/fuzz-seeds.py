#!/usr/bin/env python3
"""Writes the fuzz seed corpora, fuzz/seeds/<target>/<name>.

The input formats are those described at the top of
fuzz/fuzz_targets/notify_decode.rs and fuzz/fuzz_targets/exchange.rs; keep
the helpers below in step with them. Run from anywhere; rewrites every seed
(the files are committed, so `git diff` shows any change).
"""

import ipaddress
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")

# Notify types (IANA "IKEv2 Notify Message Types").
UNACCEPTABLE_ADDRESSES = 40
UNEXPECTED_NAT_DETECTED = 41
NAT_DETECTION_SOURCE_IP = 16388
NAT_DETECTION_DESTINATION_IP = 16389
MOBIKE_SUPPORTED = 16396
ADDITIONAL_IP4_ADDRESS = 16397
ADDITIONAL_IP6_ADDRESS = 16398
NO_ADDITIONAL_ADDRESSES = 16399
UPDATE_SA_ADDRESSES = 16400
COOKIE2 = 16401
NO_NATS_ALLOWED = 16402


def ip(a):
    return ipaddress.ip_address(a).packed


# --- notify_decode: type (u16, network order) then data -----------------

def notify(ty, data=b""):
    return struct.pack("!H", ty) + data


NOTIFY_SEEDS = {
    "mobike_supported": notify(MOBIKE_SUPPORTED),
    "additional_ip4": notify(ADDITIONAL_IP4_ADDRESS, ip("198.18.2.2")),
    "additional_ip6": notify(ADDITIONAL_IP6_ADDRESS, ip("2001:db8::2")),
    "no_additional_addresses": notify(NO_ADDITIONAL_ADDRESSES),
    "update_sa_addresses": notify(UPDATE_SA_ADDRESSES),
    "cookie2_8": notify(COOKIE2, bytes(range(8))),
    "cookie2_64": notify(COOKIE2, bytes(range(64))),
    "natd_source": notify(NAT_DETECTION_SOURCE_IP, bytes(range(20))),
    "natd_destination": notify(NAT_DETECTION_DESTINATION_IP, bytes(range(20, 40))),
    "unacceptable_addresses": notify(UNACCEPTABLE_ADDRESSES),
    "unexpected_nat_detected": notify(UNEXPECTED_NAT_DETECTED),
    # RFC 4555 4.2.6: sender's address, receiver's address, then both ports.
    "no_nats_allowed_v4": notify(
        NO_NATS_ALLOWED,
        ip("198.18.1.2") + ip("198.18.1.1") + struct.pack("!HH", 4500, 500),
    ),
    "no_nats_allowed_v6": notify(
        NO_NATS_ALLOWED,
        ip("2001:db8::2") + ip("2001:db8::1") + struct.pack("!HH", 4500, 4500),
    ),
    "cookie2_7_malformed": notify(COOKIE2, bytes(7)),
    "additional_ip4_3_malformed": notify(ADDITIONAL_IP4_ADDRESS, bytes(3)),
    "other_type": notify(16384, b"\x01\x02"),
}

# --- exchange: flags, COOKIE2 byte, then operations ---------------------

AUTHENTICATED, MOBIKE_CONFIGURED, MOBIKE_SUPPORTED_F, ORIGINAL_INITIATOR = 1, 2, 4, 8
NAT_HERE, NAT_THERE, FORCE_ENCAP, NEWER_UPDATE_QUEUED = 16, 32, 64, 128
IKE_AUTH, INFORMATIONAL = 0, 1

# The target's address pool: index -> address.
POOL = ["198.18.1.1", "198.18.1.2", "198.18.2.1", "198.18.2.2",
        "2001:db8::1", "2001:db8::2", "2001:db8:1::1", "2001:db8:1::2"]
PORTS = {4500: 0, 500: 1, 31000: 2}
# Selector-0 notify types, by index.
TYPES = [16396, 16397, 16398, 16399, 16400, 16401, 16402, 16403, 16404,
         16388, 16389, 40, 41]


def addr(a, port=4500):
    """A message address: port byte, then pool index byte (for a
    destination the target keeps the index within the source's family, which
    leaves these indexes as they are)."""
    return bytes([PORTS[port], POOL.index(a)])


def new_task(initiator):
    return bytes([0, 1 if initiator else 0])


def roam(address):
    return bytes([1, 1 if address else 0])


ADDRESSES = bytes([2])


def dpd(nat_here):
    return bytes([3, 1 if nat_here else 0])


ENABLE_PROBING = bytes([4])


def build(exchange):
    """Build with no other source address from the kernel."""
    return bytes([5, exchange, 1])


def process(exchange, src, dst, notifies, mid=1):
    """Process a received message with message ID `mid`."""
    assert len(notifies) < 256
    return (bytes([6, exchange, mid]) + src + dst + bytes([len(notifies)])
            + b"".join(notifies))


TRANSMIT = bytes([7])
MIGRATE = bytes([8])


def set_flags(flags):
    return bytes([9, flags])


def set_routes(mask, current_lost):
    return bytes([10, mask, 1 if current_lost else 0])


def set_locals(addrs, tunnel_mask=0, ignored_mask=0):
    """Our addresses; bit i of a mask: address i is on a tunnel / ignored
    interface."""
    return bytes([11, len(addrs)] + [POOL.index(a) for a in addrs]
                 + [tunnel_mask, ignored_mask])


RR_BEFORE, RR_AFTER, RR_OFF = 0, 1, 2


def set_policy(nat_prohibition=False, rr=RR_BEFORE, lab_only=False, max_peers=16):
    """The administrator's settings (lab_only: acceptable_peer_addresses
    198.18.0.0/15)."""
    b = int(nat_prohibition) | rr << 1 | int(lab_only) << 3
    return bytes([12, b, max_peers - 1])


def set_vips_ts(my_vip=None, peer_vip=None, local_ts=None, remote_ts=None):
    """Virtual IPs and one-address traffic selectors (None: none)."""
    return bytes([13] + [0x80 if a is None else POOL.index(a)
                         for a in (my_vip, peer_vip, local_ts, remote_ts)])


def time_passes(seconds):
    return bytes([14, seconds])


def n(ty, data=b""):
    """A received notify of any type (selector 1)."""
    return bytes([1]) + struct.pack("!H", ty) + bytes([len(data)]) + data


ECHO_COOKIE2 = bytes([2])  # COOKIE2 with the last one the core built
NATD_SOURCE = bytes([3])  # correct NAT_DETECTION_SOURCE_IP
NATD_DESTINATION = bytes([7])  # correct NAT_DETECTION_DESTINATION_IP
NATD_DESTINATION_MAPPED = bytes([15])  # of the destination with another port


def exchange_seed(flags, *ops):
    return bytes([flags, 0x5A]) + b"".join(ops)


RW, GW = "198.18.1.2", "198.18.1.1"
COOKIE = bytes(range(1, 17))

EXCHANGE_SEEDS = {
    # Initiator: the first IKE_AUTH request, then the last response with
    # MOBIKE_SUPPORTED and two addresses; a lost path is probed.
    "ike_auth_initiator": exchange_seed(
        MOBIKE_CONFIGURED | ORIGINAL_INITIATOR,
        new_task(True),
        build(IKE_AUTH),
        set_flags(AUTHENTICATED | MOBIKE_CONFIGURED | ORIGINAL_INITIATOR),
        process(IKE_AUTH, addr(GW), addr(RW), [
            n(MOBIKE_SUPPORTED),
            n(ADDITIONAL_IP4_ADDRESS, ip("198.18.2.1")),
            n(ADDITIONAL_IP6_ADDRESS, ip("2001:db8::1")),
        ]),
        set_routes(0xFF, True),
        new_task(True),
        roam(True),
        TRANSMIT,
    ),
    # Responder: the IKE_AUTH request with MOBIKE_SUPPORTED and addresses,
    # then the last response.
    "ike_auth_responder": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED,
        new_task(False),
        process(IKE_AUTH, addr(GW), addr(RW), [
            n(MOBIKE_SUPPORTED),
            n(ADDITIONAL_IP4_ADDRESS, ip("198.18.2.1")),
            n(NO_ADDITIONAL_ADDRESSES),
        ]),
        build(IKE_AUTH),
    ),
    # Responder: UPDATE_SA_ADDRESSES from a new address with COOKIE2 and
    # NAT-D; the response echoes the cookie.
    "update_sa_addresses_responder": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F,
        new_task(False),
        process(INFORMATIONAL, addr("198.18.2.1"), addr(RW), [
            n(UPDATE_SA_ADDRESSES),
            n(COOKIE2, COOKIE),
            NATD_SOURCE,
            NATD_DESTINATION,
        ]),
        build(INFORMATIONAL),
    ),
    # Original initiator: path check answered on a new path, then
    # UPDATE_SA_ADDRESSES with COOKIE2 and NAT-D, answered with the echo.
    "update_sa_addresses_initiator": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR,
        new_task(True),
        roam(False),
        build(INFORMATIONAL),
        TRANSMIT,
        process(INFORMATIONAL, addr(GW), addr("198.18.2.2"), []),
        build(INFORMATIONAL),
        TRANSMIT,
        process(INFORMATIONAL, addr(GW), addr("198.18.2.2"), [
            ECHO_COOKIE2,
            NATD_SOURCE,
            NATD_DESTINATION,
        ], mid=2),
    ),
    # A list of 20 addresses (16 are kept), then every path is probed.
    "twenty_addresses": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR,
        new_task(False),
        process(INFORMATIONAL, addr(GW), addr(RW),
                [n(ADDITIONAL_IP4_ADDRESS, ip(f"198.18.10.{i}")) for i in range(1, 21)]),
        build(INFORMATIONAL),
        new_task(True),
        ENABLE_PROBING,
        ADDRESSES,
        build(INFORMATIONAL),
        TRANSMIT,
    ),
    # MOBIKE DPD behind a NAT whose mapping changes between two DPDs.
    "dpd_nat_mapping_changed": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR | NAT_HERE,
        new_task(True),
        dpd(True),
        build(INFORMATIONAL),
        process(INFORMATIONAL, addr(GW), addr(RW), [NATD_SOURCE, NATD_DESTINATION_MAPPED]),
        new_task(True),
        dpd(True),
        build(INFORMATIONAL),
        process(INFORMATIONAL, addr(GW), addr(RW, 500), [NATD_SOURCE, NATD_DESTINATION_MAPPED],
                mid=2),
        build(INFORMATIONAL),
    ),
    # Rekeyed IKE_SA: a responder task migrates and sends its addresses.
    "migrate": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F,
        new_task(False),
        process(INFORMATIONAL, addr(GW), addr(RW), [n(COOKIE2, COOKIE)]),
        MIGRATE,
        roam(True),
        build(INFORMATIONAL),
        TRANSMIT,
    ),
    # The NAT prohibition notifies and an unknown type, received.
    "nat_prohibition_notifies": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR,
        new_task(False),
        process(INFORMATIONAL, addr(GW), addr(RW), [
            n(NO_NATS_ALLOWED, ip(GW) + ip(RW) + struct.pack("!HH", 4500, 4500)),
            n(UNEXPECTED_NAT_DETECTED),
            n(UNACCEPTABLE_ADDRESSES),
            n(16403, b"\x00\x00\x0e\x10"),
        ]),
        build(INFORMATIONAL),
    ),
    # Responder with return_routability = before: the update, then our
    # INFORMATIONAL with a fresh COOKIE2 to the new address, echoed.
    "return_routability_responder": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F,
        set_policy(rr=RR_BEFORE),
        new_task(False),
        process(INFORMATIONAL, addr("198.18.2.1"), addr(RW), [
            n(UPDATE_SA_ADDRESSES),
            n(COOKIE2, COOKIE),
        ]),
        build(INFORMATIONAL),
        new_task(True),
        build(INFORMATIONAL),
        TRANSMIT,
        process(INFORMATIONAL, addr("198.18.2.1"), addr(RW), [ECHO_COOKIE2]),
    ),
    # Initiator with nat_prohibition: NO_NATS_ALLOWED in IKE_AUTH and in
    # the update; the peer answers UNEXPECTED_NAT_DETECTED.
    "nat_prohibition_initiator": exchange_seed(
        MOBIKE_CONFIGURED | ORIGINAL_INITIATOR,
        set_policy(nat_prohibition=True),
        new_task(True),
        build(IKE_AUTH),
        set_flags(AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR),
        new_task(True),
        roam(True),
        set_routes(0xFF, True),
        build(INFORMATIONAL),
        TRANSMIT,
        process(INFORMATIONAL, addr(GW), addr("198.18.2.2"), []),
        build(INFORMATIONAL),
        process(INFORMATIONAL, addr(GW), addr("198.18.2.2"), [
            ECHO_COOKIE2,
            n(UNEXPECTED_NAT_DETECTED),
        ], mid=2),
        time_passes(90),
    ),
    # The address filter: a tunnel interface, virtual IPs and traffic
    # selectors; the peer announces addresses the filter rules out, and only
    # 198.18.0.0/15 is acceptable.
    "address_filter": exchange_seed(
        AUTHENTICATED | MOBIKE_CONFIGURED | MOBIKE_SUPPORTED_F | ORIGINAL_INITIATOR,
        set_policy(lab_only=True, max_peers=4),
        set_locals([RW, "198.18.2.2", "2001:db8::2", "2001:db8:1::2"], tunnel_mask=2),
        set_vips_ts(my_vip="2001:db8:1::2", peer_vip="198.18.2.1", remote_ts="2001:db8:1::1"),
        new_task(True),
        ADDRESSES,
        build(INFORMATIONAL),
        process(INFORMATIONAL, addr(GW), addr(RW), [
            n(ADDITIONAL_IP4_ADDRESS, ip("198.18.2.1")),
            n(ADDITIONAL_IP6_ADDRESS, ip("2001:db8:1::1")),
            n(ADDITIONAL_IP6_ADDRESS, ip("2001:db8::1")),
            n(ADDITIONAL_IP4_ADDRESS, ip("198.18.3.1")),
        ]),
        new_task(True),
        ENABLE_PROBING,
        build(INFORMATIONAL),
        TRANSMIT,
    ),
}


def write(target, seeds):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds in {os.path.relpath(d, ROOT)}")


def main():
    write("notify_decode", NOTIFY_SEEDS)
    write("exchange", EXCHANGE_SEEDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
