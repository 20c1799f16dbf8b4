#!/usr/bin/env python3
"""callgrind-summary.py ROAMS FILE...: per-roam figures of callgrind profiles
that tools/bench.sh (BENCH_CALLGRIND) took of a gateway during the roam.

For each FILE (a profile with --dump-instr=yes and --cache-sim=yes), one
line: instructions, first-level instruction-cache misses and last-level
misses (instruction and data) per roam, and the distinct 64-byte lines of
code run on nearly every roam (at least 0.9 * ROAMS times), all of them
and those in libmobike_rs.so. Instruction counts do not depend on the
machine's load, so two builds or the two gateways compare within a run;
the code lines say how much code a roam brings into the caches.

Only the profile's own format is read (callgrind's name compression and
relative positions); nothing is run.
"""
import re
import sys

# an object's name, or its number once named (cob= names the callee's)
OBJECT = re.compile(r"^(c?)ob=\((\d+)\)(?: (.*))?$")


def summary(path, roams):
    events = []
    totals = None
    objects = {}
    ob = None
    pos = [0, 0]
    call_cost_next = False
    hot_min = max(1, int(0.9 * roams))
    lines = {}  # (object, code line) -> executions of its most run instruction
    with open(path, encoding="utf-8", errors="replace") as f:
        if not f.readline().startswith("# callgrind format"):
            raise ValueError(f"{path}: not a callgrind profile")
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            if line.startswith("totals:"):
                totals = [int(x) for x in line.split()[1:]]
                continue
            m = OBJECT.match(line)
            if m:
                callee, idx, name = m.groups()
                if name:
                    objects[idx] = name
                if not callee:
                    ob = objects.get(idx)
                continue
            if line.startswith("calls="):
                # the next cost line is the callee's inclusive cost
                call_cost_next = True
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            fields = line.split()
            new = []
            for i, tok in enumerate(fields[:2]):
                if tok == "*":
                    new.append(pos[i])
                elif tok[0] in "+-":
                    new.append(pos[i] + int(tok, 0))
                else:
                    new.append(int(tok, 0))
            pos = new
            if call_cost_next:
                call_cost_next = False
                continue
            ir = int(fields[2]) if len(fields) > 2 else 0
            key = (ob or "?", pos[0] >> 6)
            if ir > lines.get(key, 0):
                lines[key] = ir
    if not events or totals is None:
        raise ValueError(f"{path}: not a callgrind profile")
    total = dict(zip(events, totals + [0] * (len(events) - len(totals))))
    if "Ir" not in total or "I1mr" not in total:
        raise ValueError(f"{path}: no cache simulation (--cache-sim=yes)")
    hot = [k for k, n in lines.items() if n >= hot_min]
    ours = [k for k in hot if k[0].endswith("/libmobike_rs.so")]
    ll = sum(total.get(e, 0) for e in ("ILmr", "DLmr", "DLmw"))
    return (
        f"{path}: per roam {total['Ir'] / roams:,.0f} instructions, "
        f"{total['I1mr'] / roams:,.0f} L1 instruction misses, "
        f"{ll / roams:,.1f} last-level misses; code lines run on nearly "
        f"every roam: {len(hot)} ({len(hot) * 64 // 1024} KiB), "
        f"{len(ours)} of them in libmobike_rs.so"
    )


def main(argv):
    if len(argv) < 3 or not argv[1].isdigit() or int(argv[1]) < 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    roams = int(argv[1])
    rc = 0
    for path in argv[2:]:
        try:
            print(summary(path, roams))
        except (OSError, ValueError) as e:
            print(f"callgrind-summary: {e}", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
