"""Drives the azlog emulator with the official Python SDK (azure-eventhub 5.x).

Usage: python sdk_roundtrip.py  (env AZLOG_EH_CONN = emulator connection string without
EntityPath, AZLOG_EH_HUB = hub with 2 partitions, AZLOG_EH_CG = extra consumer group).
Exits non-zero on the first failed check. The last stdout line is a JSON summary (number of
checks, the bodies partition 0 holds in order, and which partition each hub-level send went to)
so the Rust side can check the official Rust SDK receives the same events.
"""

import datetime
import json
import logging
import os
import sys
import threading
import time

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

CONN = os.environ["AZLOG_EH_CONN"]
HUB = os.environ["AZLOG_EH_HUB"]
CG = os.environ.get("AZLOG_EH_CG", "cg1")
CHECKS = []
# Large enough that, with the broker annotations, the delivery is split over two frames.
BIG = 1_048_400


def check(cond, what):
    CHECKS.append(what)
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}", file=sys.stderr)


def producer(hub=HUB, **kwargs):
    return EventHubProducerClient.from_connection_string(CONN, eventhub_name=hub, **kwargs)


class TraceLines(logging.Handler):
    """Collects the SDK's AMQP network trace (`logging_enable=True`)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def receive(partition, expect, timeout=20.0, consumer_group="$Default", settle=0.0, trace=None,
            **kwargs):
    """Receives on one partition until `expect` events (or an error / timeout). With `trace` (a
    TraceLines), the SDK's network trace of this client is collected into it."""
    client = EventHubConsumerClient.from_connection_string(
        CONN, consumer_group, eventhub_name=HUB, logging_enable=trace is not None
    )
    amqp_logger = logging.getLogger("azure.eventhub._pyamqp")
    if trace is not None:
        amqp_logger.setLevel(logging.DEBUG)
        amqp_logger.addHandler(trace)
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
    if trace is not None:
        amqp_logger.removeHandler(trace)
        amqp_logger.setLevel(logging.NOTSET)
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
    # Partition 0 holds the 5 events sent to it explicitly, plus whatever the hub-level sends
    # (keyed batch, round-robin batch) were routed there.
    n0 = p0["last_enqueued_sequence_number"] + 1
    n1 = p1["last_enqueued_sequence_number"] + 1
    check(n0 >= 5, f"partition 0 holds at least its 5 events ({n0})")
    check(p0["beginning_sequence_number"] == 0, "partition 0 begins at 0")
    check(p0["is_empty"] is False, "partition 0 not empty")
    check(isinstance(p0["last_enqueued_offset"], str), "last offset is a string")
    check(n0 + n1 == 5 + 5 + 2, f"12 events in total ({n0} + {n1})")

    # --- receive partition 0 from earliest ----------------------------------------------------
    events, errors = receive("0", n0, starting_position="-1")
    check(not errors, f"no receive errors {errors}")
    bodies = [e.body_as_str() for e in events]
    check(bodies[:5] == ["single-0", "batch-0-0", "batch-0-1", "batch-0-2", "late-0"], f"bodies {bodies}")
    seqs = [e.sequence_number for e in events]
    check(seqs == list(range(n0)), f"sequence numbers {seqs}")
    offsets = [int(e.offset) for e in events]
    check(all(isinstance(e.offset, str) for e in events), "offsets are strings")
    check(offsets[0] == 0 and all(a < b for a, b in zip(offsets, offsets[1:])), f"offsets increase {offsets}")
    check(str(offsets[-1]) == p0["last_enqueued_offset"], "last offset matches partition properties")
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
    # A consumer cannot see these errors through on_error: the SDK's EventHubConsumer.receive
    # swallows exceptions raised while its link opens and simply reopens it (the loop in
    # azure/eventhub/_consumer.py, "TODO ... issue #27137"). So check what the SDK received on
    # the wire (its own network trace): the emulator refuses the link with the service's error.
    trace = TraceLines()
    ev, _ = receive("0", 1, timeout=5, consumer_group="no-such-group", starting_position="-1",
                    trace=trace)
    detaches = [l for l in trace.lines if l.startswith("<- DetachFrame") and "amqp:not-found" in l]
    check(not ev and detaches, f"unknown consumer group refused with amqp:not-found ({len(detaches)}x)")
    check("could not be found" in detaches[0], f"not-found error text: {detaches[0]}")
    trace = TraceLines()
    ev, _ = receive("0", 1, timeout=5, starting_position="not-an-offset", trace=trace)
    detaches = [l for l in trace.lines
                if l.startswith("<- DetachFrame") and "com.microsoft:argument-error" in l]
    check(not ev and detaches, f"bad filter refused with com.microsoft:argument-error: {detaches[:1]}")
    try:
        with producer("no-such-hub", retry_total=0) as p:
            p.get_eventhub_properties()
        check(False, "unknown hub properties fail")
    except Exception as err:
        check("404" in str(err) and "could not be found" in str(err),
              f"unknown hub properties fail ({type(err).__name__}: {err})")
    try:
        with producer("no-such-hub", retry_total=0) as p:
            p.send_event(EventData("x"), partition_id="0")
        check(False, "send to unknown hub fails")
    except Exception as err:
        # The producer client reads the hub's partitions first, so the 404 comes from there.
        check("could not be found" in str(err),
              f"send to unknown hub fails ({type(err).__name__}: {err})")

    # --- a large event: crosses frames (the client's 1 MiB max-frame-size minus headroom) ----
    big = bytes((i * 7) % 251 for i in range(BIG))
    with producer() as p:
        p.send_event(EventData(big), partition_id="1")
        last = p.get_partition_properties("1")["last_enqueued_sequence_number"]
    ev, errs = receive("1", 1, starting_position=last, starting_position_inclusive=True)
    check(not errs and ev and b"".join(ev[0].body) == big,
          f"{BIG}-byte event round trip ({len(b''.join(ev[0].body)) if ev else 0} bytes)")

    # Summary for the Rust side: what partition 0 and 1 should hold (body per partition).
    summary = {"checks": len(CHECKS), "partition0": bodies, "sent": sent}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
