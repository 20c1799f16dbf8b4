#!/usr/bin/env python3
"""Reads a pcap of UDP port 4500 (IKE and UDP-encapsulated ESP, RFC 3948)
and of ESP (IP protocol 50, the kernel's IPsec without a NAT) and checks, for a responder's return routability check (RFC 4555 3.5, 3.7),
the order in which things happened on the wire towards the initiator's new
address NEW:

  1. the initiator's UPDATE request from NEW (INFORMATIONAL, flags I),
  2. the responder's own INFORMATIONAL request to NEW (flags none: the
     check; its COOKIE2 is inside the encrypted payload),
  3. the initiator's answer to it from NEW (flags I|R),
  4. the first ESP packet from the responder to NEW.

Usage: ike_pcap.py check-before PCAP NEW   (exit 0: 1 < 2 < 3 < 4)
       ike_pcap.py list PCAP                (one line per packet)
IPv4 over Ethernet only; the lab's links are veths.
"""
import socket
import struct
import sys

INFORMATIONAL = 37
FLAG_I, FLAG_R = 0x08, 0x20


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    link = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if link == 1:  # Ethernet
            if len(frame) < 14 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
        elif link == 113:  # Linux cooked
            if len(frame) < 16 or frame[14:16] != b"\x08\x00":
                continue
            ip = frame[16:]
        else:
            continue
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] not in (17, 50):
            continue
        hl = (ip[0] & 0x0F) * 4
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        if ip[9] == 50:
            yield t, src, dst, "esp", None, None
            continue
        udp = ip[hl:]
        if len(udp) < 8:
            continue
        payload = udp[8:]
        if len(payload) >= 4 + 28 and payload[:4] == b"\0\0\0\0":
            yield t, src, dst, "ike", payload[4 + 18], payload[4 + 19]
        elif len(payload) >= 8:
            yield t, src, dst, "esp", None, None


def first(pkts, pred):
    return next((p for p in pkts if pred(p)), None)


def check_before(path, new):
    pkts = list(packets(path))
    update = first(pkts, lambda p: p[3] == "ike" and p[1] == new and p[4] == INFORMATIONAL
                   and p[5] & (FLAG_I | FLAG_R) == FLAG_I)
    steps = [("initiator's request from the new address", update)]
    if update:
        after = [p for p in pkts if p[0] >= update[0]]
        check = first(after, lambda p: p[3] == "ike" and p[2] == new and p[4] == INFORMATIONAL
                      and p[5] & (FLAG_I | FLAG_R) == 0)
        steps.append(("responder's return routability check to it", check))
        if check:
            later = [p for p in after if p[0] >= check[0]]
            steps.append(("initiator's answer to the check", first(
                later, lambda p: p[3] == "ike" and p[1] == new and p[4] == INFORMATIONAL
                and p[5] & (FLAG_I | FLAG_R) == FLAG_I | FLAG_R)))
    esp = first(pkts, lambda p: p[3] == "esp" and p[2] == new)
    t0 = update[0] if update else 0
    for name, p in steps + [("responder's first ESP to the new address", esp)]:
        print("  %-45s %s" % (name, "%+.3f s" % (p[0] - t0) if p else "not seen"))
    if any(p is None for _, p in steps) or esp is None:
        print("  incomplete: a step is missing from the capture")
        return 1
    answer = steps[-1][1]
    if esp[0] < answer[0]:
        print("  ESP went to the new address before its return routability was confirmed")
        return 1
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "check-before":
        return check_before(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "list":
        for p in packets(argv[2]):
            print("%.6f %s > %s %s %s %s" % p)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
