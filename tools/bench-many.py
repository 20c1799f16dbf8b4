#!/usr/bin/env python3
"""Helpers for the benchmark's many-IKE_SA part (tools/bench.sh).

initiate SOCKET PREFIX N
    Ask the charon behind the vici SOCKET to initiate the IKE_SAs of the
    connections PREFIX1 .. PREFIXN (childless), each without waiting
    (vici `initiate` with timeout -1 returns once the job is queued), so
    charon's thread pool sets them up in parallel. Prints how many requests
    were accepted. One process and one socket instead of N swanctl runs.

roam N CAP PATTERN LOG PID [LOG PID ...] -- CMD...
    For each charon (its LOG and PID): seek to the end of LOG and note
    PID's CPU time; note the time, run CMD (the roaming event), then follow
    every LOG (charon writes it with flush_line) until N lines of each
    match the regular expression PATTERN or CAP seconds pass (with a group
    in PATTERN, N distinct values of the group, e.g. the IKE_SA's unique
    id, so an IKE_SA that moves twice counts once). Prints one line per
    charon, in order, "MATCHED SECONDS CPU_SECONDS": the lines seen, the
    time from the event to the last of them (or to the cap) and PID's CPU
    time (user + system) used in that interval. Lines are timed when they
    arrive, since the log's own time stamps are whole seconds.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time


def _kv(key, value):
    k, v = key.encode(), value.encode()
    return bytes([3, len(k)]) + k + struct.pack(">H", len(v)) + v


def _recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("vici socket closed")
        data += chunk
    return data


def _request(sock, command, items):
    cmd = command.encode()
    packet = bytes([0, len(cmd)]) + cmd + b"".join(_kv(k, v) for k, v in items)
    sock.sendall(struct.pack(">I", len(packet)) + packet)
    while True:
        (length,) = struct.unpack(">I", _recv(sock, 4))
        reply = _recv(sock, length)
        if reply[0] == 1:  # CMD_RESPONSE
            return reply[1:]
        if reply[0] == 2:  # CMD_UNKNOWN
            raise RuntimeError("vici: unknown command " + command)
        # events (we register none) are skipped


def _success(message):
    # Top-level key/value pairs only: type 3, name, 16-bit length, value.
    i = 0
    while i < len(message):
        kind = message[i]
        if kind != 3:
            return False
        n = message[i + 1]
        name = message[i + 2:i + 2 + n]
        i += 2 + n
        (vlen,) = struct.unpack(">H", message[i:i + 2])
        value = message[i + 2:i + 2 + vlen]
        i += 2 + vlen
        if name == b"success":
            return value == b"yes"
    return False


def initiate(path, prefix, count):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    ok = 0
    for i in range(1, count + 1):
        reply = _request(sock, "initiate", [("ike", "%s%d" % (prefix, i)), ("timeout", "-1")])
        ok += _success(reply)
    sock.close()
    print(ok)


def cpu_seconds(pid):
    """CPU time of the process: the sum of its threads' run time from
    schedstat (nanoseconds; charon's threads live as long as it does), or
    utime+stime in clock ticks (10 ms) where schedstat is missing."""
    total, found = 0, False
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
                    found = True
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
    except OSError:
        pass
    if found:
        return total / 1e9
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Follower:
    """One charon's log and CPU time during the roam."""

    def __init__(self, log, pid):
        self.f = open(log, "rb")
        self.f.seek(0, os.SEEK_END)
        self.pid = pid
        self.cpu0 = self.cpu_last = cpu_seconds(pid)
        self.seen, self.matched, self.buf = set(), 0, b""
        self.t_last = None

    def read(self, regex, t):
        """Reads what the log gained; True if it did."""
        chunk = self.f.read()
        if not chunk:
            return False
        self.buf += chunk
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        before = self.matched
        for line in lines:
            m = regex.search(line.decode("utf-8", "replace"))
            if m and regex.groups:
                self.seen.add(m.group(1))
                self.matched = len(self.seen)
            elif m:
                self.matched += 1
        if self.matched > before:
            self.t_last, self.cpu_last = t(), cpu_seconds(self.pid)
        return True


def roam(count, cap, pattern, charons, cmd):
    regex = re.compile(pattern)
    followers = [Follower(log, pid) for log, pid in charons]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    while time.monotonic() - t0 < cap:
        waiting = [f for f in followers if f.matched < count]
        if not waiting:
            break
        if not any([f.read(regex, time.monotonic) for f in waiting]):
            time.sleep(0.002)
    for f in followers:
        if f.matched < count:
            f.t_last, f.cpu_last = time.monotonic(), cpu_seconds(f.pid)
        print("%d %.3f %.4f" % (f.matched, (f.t_last or t0) - t0, f.cpu_last - f.cpu0))


def main(argv):
    if len(argv) == 4 and argv[0] == "initiate":
        initiate(argv[1], argv[2], int(argv[3]))
    elif argv[:1] == ["roam"] and "--" in argv and argv.index("--") >= 6:
        sep = argv.index("--")
        pairs = argv[4:sep]
        if len(pairs) % 2 or not argv[sep + 1:]:
            sys.stderr.write(__doc__)
            return 2
        charons = [(pairs[i], int(pairs[i + 1])) for i in range(0, len(pairs), 2)]
        roam(int(argv[1]), float(argv[2]), argv[3], charons, argv[sep + 1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
