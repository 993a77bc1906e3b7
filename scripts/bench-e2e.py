#!/usr/bin/env python3
"""Helpers of scripts/bench-e2e.sh (official Python SDK azure-eventhub 5.x, the test venv).

  publish   --conn CS --hub H --partitions P --records N --per-event K --sample FILE
      Publishes N records from FILE (its "records", replicated) as {"records":[...]} events of K
      records, round robin over the partitions. Prints {"events", "records", "bytes"}.
  baseline  --conn CS --hub H --records N --out FILE [--timeout S]
      The baseline: EventHubConsumerClient receives every event of the hub from the start, splits
      the envelopes and writes one hand-written CEF line per record to FILE; stops after N records.
      Prints {"records", "secs", "first_secs", "out_bytes"} (secs: from creating the client to the
      flushed file; first_secs: from creating the client to the first received batch).
  tcp-count --port P --lines N [--timeout S]
      A TCP receiver: accepts connections on 127.0.0.1:P, counts newline-terminated lines; once N
      lines arrived prints {"lines", "bytes", "first_at", "last_at"} (wall clock of the first
      bytes and of the Nth line).
  wait-lines --file F --lines N [--timeout S]
      Follows F until it holds N lines; prints {"lines", "bytes", "first_at", "last_at"}.
(--conn is the emulator connection string without EntityPath.)
"""

import argparse
import json
import os
import socket
import sys
import threading
import time


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cmd_publish(args):
    from azure.eventhub import EventData, EventHubProducerClient

    with open(args.sample, encoding="utf-8") as f:
        sample = [json.dumps(r, separators=(",", ":")) for r in json.load(f)["records"]]
    bodies = []
    n = 0
    while n < args.records:
        k = min(args.per_event, args.records - n)
        bodies.append('{"records":[' + ",".join(sample[(n + i) % len(sample)] for i in range(k)) + "]}")
        n += k
    total_bytes = sum(len(b) for b in bodies)
    with EventHubProducerClient.from_connection_string(args.conn, eventhub_name=args.hub) as p:
        for part in range(args.partitions):
            mine = bodies[part :: args.partitions]
            batch = p.create_batch(partition_id=str(part))
            for body in mine:
                ev = EventData(body)
                try:
                    batch.add(ev)
                except ValueError:
                    p.send_batch(batch)
                    batch = p.create_batch(partition_id=str(part))
                    batch.add(ev)
            if len(batch):
                p.send_batch(batch)
    out({"events": len(bodies), "records": n, "bytes": total_bytes})


def cef_escape_header(v):
    return str(v).replace("\\", "\\\\").replace("|", "\\|")


def cef_escape_ext(v):
    return (
        str(v).replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")
    )


def to_cef(r):
    """A simple hand-written CEF line for one Azure resource-log record."""
    props = r.get("properties") if isinstance(r.get("properties"), dict) else {}
    level = str(r.get("level") or r.get("Level") or "")
    severity = {"critical": 10, "error": 8, "warning": 5, "informational": 3}.get(level.lower(), 3)
    name = r.get("operationName") or r.get("category") or "AzureLog"
    ext = {
        "rt": r.get("time"),
        "cat": r.get("category"),
        "act": r.get("operationName"),
        "outcome": r.get("resultType"),
        "src": r.get("callerIpAddress") or props.get("clientIP") or props.get("sourceAddress"),
        "suser": r.get("identity", {}).get("claims", {}).get("name")
        if isinstance(r.get("identity"), dict)
        else None,
        "cs1Label": "resourceId",
        "cs1": r.get("resourceId"),
        "externalId": r.get("correlationId"),
        "msg": json.dumps(props, separators=(",", ":")) if props else None,
    }
    ext_s = " ".join(f"{k}={cef_escape_ext(v)}" for k, v in ext.items() if v not in (None, ""))
    return (
        f"CEF:0|Microsoft|Azure|1.0|{cef_escape_header(name)}|{cef_escape_header(name)}|"
        f"{severity}|{ext_s}\n"
    )


def cmd_baseline(args):
    from azure.eventhub import EventHubConsumerClient

    done = threading.Event()
    count = [0]
    first = []
    errors = []
    f = open(args.out, "w", encoding="utf-8", buffering=1 << 20)
    lock = threading.Lock()
    started = time.monotonic()
    client = EventHubConsumerClient.from_connection_string(
        args.conn, consumer_group="$Default", eventhub_name=args.hub, load_balancing_strategy="greedy"
    )

    def on_event_batch(_ctx, events):
        lines = []
        for ev in events:
            for r in json.loads(ev.body_as_str())["records"]:
                lines.append(to_cef(r))
        with lock:
            if not first:
                first.append(time.monotonic() - started)
            f.write("".join(lines))
            count[0] += len(lines)
            if count[0] >= args.records:
                done.set()

    def on_error(_ctx, err):
        errors.append(repr(err))

    worker = threading.Thread(
        target=client.receive_batch,
        kwargs={
            "on_event_batch": on_event_batch,
            "on_error": on_error,
            "starting_position": "-1",
            "max_batch_size": 300,
            "prefetch": 300,
            "max_wait_time": 5,
        },
        daemon=True,
    )
    worker.start()
    done.wait(args.timeout)
    with lock:
        f.flush()
        os.fsync(f.fileno())
        secs = time.monotonic() - started
        n = count[0]
        f.close()
    client.close()
    worker.join(10)
    out(
        {
            "records": n,
            "secs": secs,
            "first_secs": first[0] if first else None,
            "out_bytes": os.path.getsize(args.out),
            "errors": errors[:3],
        }
    )
    return 0 if n >= args.records else 1


def cmd_tcp_count(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(16)
    state = {"lines": 0, "bytes": 0, "first_at": None, "last_at": None}
    lock = threading.Lock()
    done = threading.Event()

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    return
                with lock:
                    if state["first_at"] is None:
                        state["first_at"] = time.time()
                    state["lines"] += data.count(b"\n")
                    state["bytes"] += len(data)
                    if state["lines"] >= args.lines and not done.is_set():
                        state["last_at"] = time.time()
                        done.set()

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    done.wait(args.timeout)
    with lock:
        out(dict(state))
    return 0 if done.is_set() else 1


def cmd_wait_lines(args):
    deadline = time.monotonic() + args.timeout
    lines = 0
    size = 0
    first_at = None
    while not os.path.exists(args.file):
        if time.monotonic() > deadline:
            out({"lines": 0, "bytes": 0, "last_at": None})
            return 1
        time.sleep(0.02)
    with open(args.file, "rb") as f:
        while lines < args.lines and time.monotonic() < deadline:
            data = f.read(1 << 22)
            if not data:
                time.sleep(0.02)
                continue
            if first_at is None:
                first_at = time.time()
            lines += data.count(b"\n")
            size += len(data)
    ok = lines >= args.lines
    out({"lines": lines, "bytes": size, "first_at": first_at, "last_at": time.time() if ok else None})
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("publish")
    s.add_argument("--conn", required=True)
    s.add_argument("--hub", required=True)
    s.add_argument("--partitions", type=int, required=True)
    s.add_argument("--records", type=int, required=True)
    s.add_argument("--per-event", type=int, default=100)
    s.add_argument("--sample", required=True)
    s = sub.add_parser("baseline")
    s.add_argument("--conn", required=True)
    s.add_argument("--hub", required=True)
    s.add_argument("--records", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--timeout", type=float, default=1800)
    s = sub.add_parser("tcp-count")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--lines", type=int, required=True)
    s.add_argument("--timeout", type=float, default=600)
    s = sub.add_parser("wait-lines")
    s.add_argument("--file", required=True)
    s.add_argument("--lines", type=int, required=True)
    s.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    fn = {
        "publish": cmd_publish,
        "baseline": cmd_baseline,
        "tcp-count": cmd_tcp_count,
        "wait-lines": cmd_wait_lines,
    }[args.cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
