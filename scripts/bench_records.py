#!/usr/bin/env python3
"""Writes the input files of scripts/bench-map.sh.

Reads `azlog-hub map --format ecs` output grouped by input file from stdin (a line
`#family <name>` starts each group; each record's `event.original` is kept) and writes at
least MB mebibytes (a fraction is fine) of records, one per line, to OUT, round after round:

- `mix` and `samples`: every record once, group after group;
- `runs`: each family's records repeated 10 times in a row (runs of 10-60), the families in
  the same proportions as one record each (the `mix` order);
- `varied`: the same runs, but no two records are byte-identical: in every copy the GUIDs,
  the last octet of IPv4 addresses and the seconds of ISO-8601 times are rewritten
  (deterministically), so that a family's records share their structure, as one category's
  records in an Event Hubs event do, without repeating their values.

Usage: python3 scripts/bench_records.py mix|samples|runs|varied MB OUT < groups
"""
import json
import random
import re
import sys

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
IPV4 = re.compile(r"\b((?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.)(25[0-5]|2[0-4]\d|1?\d?\d)\b")
ISO_SECONDS = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:)(\d{2})")


def new_guid(match, rng):
    guid = "%08x-%04x-4%03x-8%03x-%012x" % (
        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12),
        rng.getrandbits(48))
    return guid.upper() if match.group(0).isupper() else guid


def vary(line, rng):
    line = GUID.sub(lambda m: new_guid(m, rng), line)
    line = IPV4.sub(lambda m: m.group(1) + str(rng.randint(1, 254)), line)
    line = ISO_SECONDS.sub(lambda m: m.group(1) + "%02d" % rng.randint(0, 59), line)
    return line


def main():
    order, mb, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    if order not in ("mix", "samples", "runs", "varied"):
        sys.exit("order must be mix, samples, runs or varied")
    groups = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line.startswith("#family "):
            groups.append([])
        elif line and groups:
            groups[-1].append(json.loads(line)["event"]["original"])
    groups = [g for g in groups if g]
    if not groups:
        sys.exit("no records")
    repeat = 10 if order in ("runs", "varied") else 1
    rng = random.Random(22)
    want = int(mb * 1024 * 1024)
    written = 0
    with open(out, "w", encoding="utf-8") as fh:
        while written < want:
            for group in groups:
                for _ in range(repeat):
                    for rec in group:
                        line = vary(rec, rng) if order == "varied" else rec
                        fh.write(line + "\n")
                        written += len(line.encode()) + 1


if __name__ == "__main__":
    main()
