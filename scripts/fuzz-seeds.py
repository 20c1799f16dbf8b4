#!/usr/bin/env python3
"""Writes the fuzz seed corpora, fuzz/seeds/<target>/<name>.

The input formats are those described at the top of
fuzz/fuzz_targets/notify_decode.rs, fuzz/fuzz_targets/exchange.rs and
fuzz/fuzz_targets/adapter.rs; keep
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


# --- adapter: two flag bytes (road warrior, gateway), then operations -----
# (fuzz/fuzz_targets/adapter.rs). Pool addresses: 0 the road warrior's
# 198.18.2.2:4500, 1 the gateway's 198.18.1.1:4500, then those a_address()
# adds. Slot 0 starts with the road warrior's initiator task, slot 1 with
# the gateway's responder task.

A_AUTH, A_ORIG, A_NAT_HERE, A_NAT_THERE, A_NAT_FAKE, A_MOBIKE, A_NATT = 1, 2, 4, 8, 16, 32, 64
A_IKE_AUTH, A_INFORMATIONAL = 0, 1
RW_SLOT, GW_SLOT = 0, 1
RW_SA, GW_SA = 0, 1


def a_address(a, port=4500):
    """Op 0: a pool address (the next index)."""
    packed = ipaddress.ip_address(a).packed
    v6 = 1 if len(packed) == 16 else 0
    kind = {4500: 0, 500: 1, 0: 3}.get(port, 2)
    out = bytes([0, v6 | kind << 1]) + packed
    if kind == 2:
        out += struct.pack("!H", port)
    return out


def a_kernel(locals_mask, sources=(), names=0, routed=0xFF, tunnels=0):
    """Op 1: local addresses (a mask over the pool), the kernel's source
    per destination ((dst, src) pool indices), interface names, routes."""
    out = bytes([1]) + struct.pack("!H", locals_mask) + bytes([len(sources)])
    for d, src in sources:
        out += bytes([d, src])
    return out + bytes([names, routed, tunnels])


def a_flags(sa, flags):
    return bytes([2, sa, flags])


def a_new_task(slot, initiator):
    return bytes([3, slot, 0 if initiator else 1])


def a_message(exchange, src, dst, mid, request):
    return bytes([exchange, src, dst, mid, 0 if request else 1])


def a_build(slot, exchange, src, dst, mid=1, request=True):
    return bytes([4]) + a_message(exchange, src, dst, mid, request) + bytes([slot])


# notifies: (selector, ...) as in Run::notify
def a_typed(index, data=b""):
    """A MOBIKE or NAT-T type by its index in TYPES."""
    return bytes([0, index, len(data)]) + data


def a_any(ty, data=b""):
    return bytes([1]) + struct.pack("!H", ty) + bytes([len(data)]) + data


def a_pool_address(i):
    return bytes([2, i])


def a_echo(i):
    return bytes([3, i])


A_MOBIKE_SUPPORTED = a_typed(0)
A_NO_ADDITIONAL = a_typed(3)
A_UPDATE = a_typed(4)


def a_process(slot, exchange, src, dst, notifies, mid=1, request=True):
    return (bytes([5]) + a_message(exchange, src, dst, mid, request)
            + bytes([len(notifies)]) + b"".join(notifies) + bytes([slot]))


def a_transmit(slot):
    return bytes([6, slot])


def a_roam(slot, address):
    return bytes([7, 1 if address else 0, slot])


def a_dpd(slot):
    return bytes([8, slot])


def a_addresses(slot):
    return bytes([9, slot])


def a_probing(slot):
    return bytes([10, slot])


def a_migrate(slot):
    return bytes([11, slot])


def a_destroy(slot):
    return bytes([12, slot])


A_RUN_JOBS = bytes([13])


def a_child(sa, spi, requeue):
    return bytes([14, sa]) + struct.pack("!I", spi) + bytes([1 if requeue else 0])


def a_hosts(sa, my, other):
    return bytes([15, sa, my, other])


ESTABLISHED_RW = A_AUTH | A_ORIG | A_MOBIKE
ESTABLISHED_GW = A_AUTH | A_MOBIKE

ADAPTER_SEEDS = {
    # IKE_AUTH: the road warrior's request with its other address, the
    # gateway's processing and answer, the road warrior's processing
    "ike_auth_both_roles": bytes([A_ORIG, 0]) + b"".join([
        a_address("198.18.3.2"),
        a_kernel(0b101, [(1, 0)], names=0b0100),
        a_build(RW_SLOT, A_IKE_AUTH, 0, 1),
        a_process(GW_SLOT, A_IKE_AUTH, 0, 1, [A_MOBIKE_SUPPORTED, a_pool_address(2)]),
        a_flags(GW_SA, ESTABLISHED_GW),
        a_kernel(0b010, [(0, 1)]),
        a_build(GW_SLOT, A_IKE_AUTH, 1, 0, request=False),
        a_flags(RW_SA, A_AUTH | A_ORIG),
        a_process(RW_SLOT, A_IKE_AUTH, 1, 0, [A_MOBIKE_SUPPORTED], request=False),
    ]),
    # a gateway follows UPDATE_SA_ADDRESSES from a new address, with
    # CHILD_SAs the kernel cannot update in place (deferred rekeyings)
    "gateway_update": bytes([ESTABLISHED_RW, ESTABLISHED_GW]) + b"".join([
        a_address("198.18.3.2"),
        a_kernel(0b010, [(2, 1), (0, 1)]),
        a_child(GW_SA, 0xC1, True),
        a_child(GW_SA, 0xC2, True),
        a_process(GW_SLOT, A_INFORMATIONAL, 2, 1, [A_UPDATE, a_pool_address(2), A_NO_ADDITIONAL], mid=3),
        a_build(GW_SLOT, A_INFORMATIONAL, 1, 2, mid=3, request=False),
        a_destroy(GW_SLOT),
        A_RUN_JOBS,
        a_new_task(GW_SLOT, False),
        a_process(GW_SLOT, A_INFORMATIONAL, 0, 1, [A_UPDATE], mid=4),
        a_build(GW_SLOT, A_INFORMATIONAL, 1, 0, mid=4, request=False),
        a_destroy(GW_SLOT),
        A_RUN_JOBS,
    ]),
    # a road warrior roams: every path checked, the answer echoing its
    # COOKIE2 and NAT-D, the update, retransmissions while probing, a DPD
    "roaming_road_warrior": bytes([ESTABLISHED_RW, ESTABLISHED_GW]) + b"".join([
        a_address("198.18.3.2"),
        a_address("198.18.4.1"),
        a_kernel(0b100, [(1, 2), (3, 2)], names=0b01),
        a_process(RW_SLOT, A_INFORMATIONAL, 1, 0, [a_pool_address(3)], mid=2, request=False),
        a_new_task(RW_SLOT, True),
        a_roam(RW_SLOT, True),
        a_build(RW_SLOT, A_INFORMATIONAL, 2, 1, mid=5),
        a_transmit(RW_SLOT),
        a_process(RW_SLOT, A_INFORMATIONAL, 1, 2, [a_echo(0), a_echo(1), a_echo(2), a_echo(3)], mid=5, request=False),
        a_new_task(RW_SLOT, True),
        a_probing(RW_SLOT),
        a_transmit(RW_SLOT),
        a_dpd(RW_SLOT),
        a_addresses(RW_SLOT),
        a_build(RW_SLOT, A_INFORMATIONAL, 2, 1, mid=6),
        a_migrate(RW_SLOT),
        a_transmit(RW_SLOT),
        a_destroy(RW_SLOT),
        A_RUN_JOBS,
    ]),
    # IPv6 and many addresses: more notifies than a message holds inline,
    # more addresses than the peer address list may hold
    "ipv6_many_addresses": bytes([ESTABLISHED_RW, ESTABLISHED_GW]) + b"".join(
        [a_address("2001:db8::2"), a_address("2001:db8::1", 31000), a_address("198.18.9.9", 500),
         a_kernel(0b0110, [(2, 3)], names=0b1001, tunnels=0b100),
         a_hosts(GW_SA, 3, 2)]
        + [a_process(GW_SLOT, A_INFORMATIONAL, 2, 3,
                     [A_UPDATE] + [a_any(16398, bytes(15) + bytes([i])) for i in range(1, 21)], mid=7)]
        + [a_build(GW_SLOT, A_INFORMATIONAL, 3, 2, mid=7, request=False),
           a_new_task(GW_SLOT, False),
           a_process(GW_SLOT, A_INFORMATIONAL, 4, 3,
                     [a_any(16397, bytes([10, 0, 0, i])) for i in range(1, 23)], mid=8),
           a_roam(GW_SLOT, False),
           a_transmit(GW_SLOT)]
    ),
    # a childless gateway IKE_SA behind a NAT: NAT-D and the fake source
    "nat_childless_gateway": bytes([ESTABLISHED_RW | A_NAT_HERE, ESTABLISHED_GW | A_NAT_THERE | A_NATT]) + b"".join([
        a_address("203.0.113.7", 31000),
        a_kernel(0b010, [(2, 1)]),
        a_process(GW_SLOT, A_INFORMATIONAL, 2, 1, [A_UPDATE, a_typed(9, bytes(20)), a_typed(10, bytes(20)),
                                                   a_typed(5, bytes(8))], mid=9),
        a_build(GW_SLOT, A_INFORMATIONAL, 1, 2, mid=9, request=False),
        a_new_task(RW_SLOT, True),
        a_dpd(RW_SLOT),
        a_build(RW_SLOT, A_INFORMATIONAL, 0, 1, mid=10),
        a_transmit(RW_SLOT),
    ]),
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
    write("adapter", ADAPTER_SEEDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
