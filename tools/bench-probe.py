#!/usr/bin/env python3
"""An ICMP echo prober for outage measurement: `ping -D -i 0.01` sends every
16-20 ms on this kernel (its sleeps round up), too coarse for a 15 ms target.

bench-probe.py DEST SECONDS [SOURCE]
    Send an echo request to the IPv4 address DEST every 10 ms, on an
    absolute schedule (a late send does not shift the next ones), for at
    most SECONDS (and 100 * SECONDS + 100 requests), from SOURCE if given.
    Each answer is printed as ping -D prints it, "[epoch.micro] 64 bytes
    from DEST: icmp_seq=N", at its arrival; at the end (or on SIGTERM) the
    line "N packets transmitted, M received". Needs root (raw socket).

The arrival time is the kernel's receive timestamp (SO_TIMESTAMPNS), not
the time this process got to read the answer: in the emulated VM of the
xfrm bench (TCG) the prober itself is often scheduled late, and on a loaded
machine too. Without the timestamp, the time of reading.
"""
import os
import select
import signal
import socket
import struct
import sys
import time

INTERVAL = 0.01
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux, asm-generic


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo(ident, seq):
    payload = struct.pack("!d", time.time()) + bytes(48)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    dest, seconds = argv[0], float(argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if len(argv) == 3:
        sock.bind((argv[2], 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    ident = os.getpid() & 0xFFFF
    sent = received = 0
    out = sys.stdout

    def summary(*_):
        out.write("%d packets transmitted, %d received\n" % (sent, received))
        out.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, summary)
    signal.signal(signal.SIGINT, summary)
    out.write("PROBE %s every %d ms\n" % (dest, INTERVAL * 1000))
    start = time.monotonic()
    limit = int(seconds * 100) + 100
    next_send = start
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_send and sent < limit:
            sent += 1
            try:
                sock.sendto(echo(ident, sent & 0xFFFF), (dest, 0))
            except OSError:
                pass  # no route for now: a lost probe, like ping
            next_send = start + sent * INTERVAL
        timeout = max(0.0, next_send - time.monotonic()) if sent < limit else 0.05
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            continue
        data, ancillary, _, addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        t = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack("@qq", value[:16])
                t = sec + nsec / 1e9
        ihl = (data[0] & 0x0F) * 4
        kind, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if kind == 0 and rid == ident and addr[0] == dest:
            received += 1
            out.write("[%.6f] 64 bytes from %s: icmp_seq=%d\n" % (t, dest, seq))
            out.flush()
    summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
