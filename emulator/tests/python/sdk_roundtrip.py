"""Drives the azlog emulator with the official Python SDK (azure-eventhub 5.x).

Usage: python sdk_roundtrip.py  (env AZLOG_EH_CONN = emulator connection string without
EntityPath, AZLOG_EH_HUB = hub with 2 partitions, AZLOG_EH_CG = extra consumer group).
Exits non-zero on the first failed check. The last stdout line is a JSON summary of what was
sent (partition, sequence number, offset, body) so the Rust side can check the official Rust
SDK receives the same events.
"""

import datetime
import json
import os
import sys
import threading
import time

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp import _transport


def _sandbox_socket_shim():
    """pyamqp reads every known TCP option of a connected socket and sets it back unchanged.
    Some sandboxed kernels (gVisor, as on the CI machine) refuse re-setting TCP_MAXSEG with
    EINVAL, which makes every connect fail. Setting an option to its current value is a no-op,
    so dropping TCP_MAXSEG from that list changes nothing else in the SDK."""
    _transport.KNOWN_TCP_OPTS = tuple(o for o in _transport.KNOWN_TCP_OPTS if o != "TCP_MAXSEG")


_sandbox_socket_shim()

CONN = os.environ["AZLOG_EH_CONN"]
HUB = os.environ["AZLOG_EH_HUB"]
CG = os.environ.get("AZLOG_EH_CG", "cg1")
CHECKS = []


def check(cond, what):
    CHECKS.append(what)
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}", file=sys.stderr)


def producer(hub=HUB):
    return EventHubProducerClient.from_connection_string(CONN, eventhub_name=hub)


def receive(partition, expect, timeout=20.0, consumer_group="$Default", settle=0.0, **kwargs):
    """Receives on one partition until `expect` events (or an error / timeout)."""
    client = EventHubConsumerClient.from_connection_string(
        CONN, consumer_group, eventhub_name=HUB
    )
    events, errors = [], []
    done = threading.Event()
    started = threading.Event()

    def on_event(_ctx, event):
        if event is None:
            return
        events.append(event)
        if len(events) >= expect:
            done.set()

    def on_error(_ctx, err):
        errors.append(err)
        done.set()

    def on_init(_ctx):
        started.set()

    thread = threading.Thread(
        target=client.receive,
        kwargs=dict(
            on_event=on_event,
            on_error=on_error,
            on_partition_initialize=on_init,
            partition_id=partition,
            max_wait_time=None,
            **kwargs,
        ),
        daemon=True,
    )
    thread.start()
    done.wait(timeout)
    if settle:
        time.sleep(settle)
    client.close()
    thread.join(10)
    return events, errors


def main():
    sent = []  # (partition, body)

    # --- hub and partition properties -------------------------------------------------------
    with producer() as p:
        props = p.get_eventhub_properties()
        check(props["eventhub_name"] == HUB, f"hub name {props['eventhub_name']!r}")
        check(props["partition_ids"] == ["0", "1"], f"partition ids {props['partition_ids']}")
        check(isinstance(props["created_at"], datetime.datetime), "created_at is a datetime")
        empty = p.get_partition_properties("0")
        check(empty["is_empty"] is True, "partition 0 empty at start")
        check(empty["last_enqueued_sequence_number"] == -1, "empty partition last seq -1")

        # --- sends ---------------------------------------------------------------------------
        # 1. single event to an explicit partition, with application properties
        ev = EventData("single-0")
        ev.properties = {"kind": "single", "n": 1}
        p.send_event(ev, partition_id="0")
        sent.append(("0", "single-0"))
        time.sleep(0.05)
        # 2. batch of 3 to partition 0
        batch = p.create_batch(partition_id="0")
        for i in range(3):
            batch.add(EventData(f"batch-0-{i}"))
            sent.append(("0", f"batch-0-{i}"))
        p.send_batch(batch)
        time.sleep(0.05)
        # 3. one more single event, later enqueued time
        p.send_event(EventData("late-0"), partition_id="0")
        sent.append(("0", "late-0"))
        # 4. batch with a partition key: every event lands in the same partition
        batch = p.create_batch(partition_key="tenant-a")
        for i in range(4):
            batch.add(EventData(f"keyed-{i}"))
        p.send_batch(batch)
        # 5. list send with partition key again -> same partition as (4)
        p.send_batch([EventData("keyed-4")], partition_key="tenant-a")
        # 6. batch to the hub without key or partition (round robin)
        p.send_batch([EventData("rr-0"), EventData("rr-1")])

        # --- oversized: the client refuses events over the advertised 1 MiB -----------------
        try:
            p.send_event(EventData(b"x" * (1024 * 1024 + 10)), partition_id="1")
            check(False, "oversized event refused")
        except Exception as err:  # ValueError / EventDataSendError
            check("size" in str(err).lower() or "large" in str(err).lower(),
                  f"oversized event refused ({type(err).__name__})")

        p0 = p.get_partition_properties("0")
        p1 = p.get_partition_properties("1")
    check(p0["last_enqueued_sequence_number"] == 4, f"partition 0 last seq {p0['last_enqueued_sequence_number']}")
    check(p0["beginning_sequence_number"] == 0, "partition 0 begins at 0")
    check(p0["is_empty"] is False, "partition 0 not empty")
    check(isinstance(p0["last_enqueued_offset"], str), "last offset is a string")
    total = p0["last_enqueued_sequence_number"] + 1 + p1["last_enqueued_sequence_number"] + 1
    check(total == 5 + 5 + 2, f"12 events in total ({total})")

    # --- receive partition 0 from earliest ----------------------------------------------------
    events, errors = receive("0", 5, starting_position="-1")
    check(not errors, f"no receive errors {errors}")
    bodies = [e.body_as_str() for e in events]
    check(bodies[:5] == ["single-0", "batch-0-0", "batch-0-1", "batch-0-2", "late-0"], f"bodies {bodies}")
    seqs = [e.sequence_number for e in events]
    check(seqs[:5] == [0, 1, 2, 3, 4], f"sequence numbers {seqs}")
    offsets = [int(e.offset) for e in events]
    check(all(isinstance(e.offset, str) for e in events), "offsets are strings")
    check(offsets[0] == 0 and all(a < b for a, b in zip(offsets, offsets[1:])), f"offsets increase {offsets}")
    check(str(offsets[4]) == p0["last_enqueued_offset"], "last offset matches partition properties")
    check(events[0].properties.get(b"kind") == b"single" or events[0].properties.get("kind") == "single",
          f"application properties kept {events[0].properties}")
    times = [e.enqueued_time for e in events]
    check(all(t is not None for t in times) and times == sorted(times), "enqueued times non-decreasing")
    check(times[1] == times[2] == times[3], "one batch shares one enqueued time")
    check(times[4] > times[3] > times[0], "later sends have later enqueued times")
    check(events[0].partition_key is None, "no partition key on unkeyed event")
    sys_props = events[1].system_properties
    check(sys_props.get(b"x-opt-sequence-number") == 1, f"system properties {sys_props}")

    # --- sequence number, inclusive and exclusive ---------------------------------------------
    ev, _ = receive("0", 1, starting_position=2, starting_position_inclusive=True)
    check(ev and ev[0].sequence_number == 2, "from seq 2 inclusive starts at 2")
    ev, _ = receive("0", 1, starting_position=2, starting_position_inclusive=False)
    check(ev and ev[0].sequence_number == 3, "from seq 2 exclusive starts at 3")

    # --- offset ------------------------------------------------------------------------------
    ev, _ = receive("0", 1, starting_position=str(offsets[1]), starting_position_inclusive=False)
    check(ev and ev[0].sequence_number == 2, "from offset of seq 1 exclusive starts at 2")
    ev, _ = receive("0", 1, starting_position=str(offsets[1]), starting_position_inclusive=True)
    check(ev and ev[0].sequence_number == 1, "from offset of seq 1 inclusive starts at 1")

    # --- enqueued time -------------------------------------------------------------------------
    ev, _ = receive("0", 1, starting_position=times[1], starting_position_inclusive=True)
    check(ev and ev[0].sequence_number == 1, f"from enqueued time of seq 1 inclusive -> {ev and ev[0].sequence_number}")
    ev, _ = receive("0", 1, starting_position=times[1], starting_position_inclusive=False)
    check(ev and ev[0].sequence_number == 4, f"from enqueued time of seq 1 exclusive -> {ev and ev[0].sequence_number}")

    # --- partition key routing ----------------------------------------------------------------
    keyed_partition = None
    for pid in ("0", "1"):
        got, _ = receive(pid, 20, timeout=3, starting_position="-1")
        keyed = [e for e in got if e.body_as_str().startswith("keyed-")]
        if keyed:
            check(keyed_partition is None, "all keyed events in one partition")
            keyed_partition = pid
            check([e.body_as_str() for e in keyed] == [f"keyed-{i}" for i in range(5)], "keyed order kept")
            pk = keyed[0].partition_key
            check(pk in ("tenant-a", b"tenant-a"), f"partition key annotation {pk!r}")
        for e in got:
            sent.append((pid, e.body_as_str())) if e.body_as_str().startswith(("keyed-", "rr-")) else None
    check(keyed_partition is not None, "keyed events found")

    # --- latest: only events sent after the receiver attached ---------------------------------
    result = {}

    def latest_reader():
        result["events"], result["errors"] = receive("1", 1, timeout=20, starting_position="@latest")

    t = threading.Thread(target=latest_reader)
    t.start()
    time.sleep(3)  # let the receiver attach
    with producer() as p:
        p.send_event(EventData("after-latest"), partition_id="1")
    sent.append(("1", "after-latest"))
    t.join(30)
    got = result.get("events") or []
    check([e.body_as_str() for e in got] == ["after-latest"], f"latest sees only the new event {[e.body_as_str() for e in got]}")

    # --- configured consumer group (case-insensitive) works -----------------------------------
    ev, errs = receive("0", 1, consumer_group=CG.upper(), starting_position="-1")
    check(ev and ev[0].sequence_number == 0 and not errs, "configured consumer group receives")

    # --- errors -----------------------------------------------------------------------------
    ev, errs = receive("0", 1, timeout=20, consumer_group="no-such-group", starting_position="-1")
    check(not ev and errs, f"unknown consumer group fails: {errs[:1]}")
    check("could not be found" in str(errs[0]) or "not-found" in str(errs[0]).lower(), "not-found error text")
    ev, errs = receive("0", 1, timeout=20, starting_position="not-an-offset")
    check(not ev and errs, f"bad filter fails: {errs[:1]}")
    try:
        with producer("no-such-hub") as p:
            p.get_eventhub_properties()
        check(False, "unknown hub properties fail")
    except Exception as err:
        check(True, f"unknown hub properties fail ({type(err).__name__})")
    try:
        with producer("no-such-hub") as p:
            p.send_event(EventData("x"))
        check(False, "send to unknown hub fails")
    except Exception as err:
        check("could not be found" in str(err) or "not" in str(err).lower(),
              f"send to unknown hub fails ({type(err).__name__})")

    # Summary for the Rust side: what partition 0 and 1 should hold (body per partition).
    summary = {"checks": len(CHECKS), "partition0": bodies[:5], "sent": sent}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
