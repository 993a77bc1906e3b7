#!/usr/bin/env python3
"""Interop driver for azlog-hub's Blob checkpoint store tests (consumer/tests/checkpoint_python_interop.rs).

Uses the official `azure-eventhub` + `azure-eventhub-checkpointstoreblob` packages. Every
subcommand prints exactly one JSON document on stdout.

  (--eh-conn is an Event Hubs connection string without EntityPath; --hub names the hub)
  fqns     --eh-conn CS --hub H
      -> {"fully_qualified_namespace": ..., "eventhub_name": ...} as the Python processor sees them
  list     --storage-conn CS --container C --fqns F --hub H --cg G
      -> [{"partition_id", "offset", "sequence_number"}, ...]  (BlobCheckpointStore.list_checkpoints)
  update   --storage-conn CS --container C --fqns F --hub H --cg G --partition P --offset O --seq N
      -> {"ok": true}                                          (BlobCheckpointStore.update_checkpoint)
  consume  --eh-conn CS --hub H --storage-conn CS --container C --cg G --partition P --expect N [--timeout S]
      -> {"events": [{"sequence_number", "offset", "body"}...]}
         Runs EventHubConsumerClient.receive with the BlobCheckpointStore, so the start position comes
         from the stored checkpoint; checkpoints after every event; stops after N events or S seconds.
"""

import argparse
import json
import sys
import threading
import time
import traceback

from azure.eventhub import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore


def store(args):
    return BlobCheckpointStore.from_connection_string(args.storage_conn, args.container)


def cmd_fqns(args):
    client = EventHubConsumerClient.from_connection_string(
        args.eh_conn, consumer_group="$Default", eventhub_name=args.hub
    )
    out = {
        "fully_qualified_namespace": client._address.hostname,  # pylint: disable=protected-access
        "eventhub_name": client.eventhub_name,
    }
    client.close()
    return out


def cmd_list(args):
    with store(args) as s:
        cps = s.list_checkpoints(args.fqns, args.hub, args.cg)
    return [
        {"partition_id": c["partition_id"], "offset": c["offset"], "sequence_number": c["sequence_number"]}
        for c in cps
    ]


def cmd_update(args):
    with store(args) as s:
        s.update_checkpoint(
            {
                "fully_qualified_namespace": args.fqns,
                "eventhub_name": args.hub,
                "consumer_group": args.cg,
                "partition_id": args.partition,
                "offset": args.offset,
                "sequence_number": args.seq,
            }
        )
    return {"ok": True}


def cmd_consume(args):
    events = []
    errors = []
    done = threading.Event()
    client = EventHubConsumerClient.from_connection_string(
        args.eh_conn, consumer_group=args.cg, eventhub_name=args.hub, checkpoint_store=store(args)
    )

    def on_event(ctx, event):
        if event is None:
            return
        events.append(
            {
                "sequence_number": event.sequence_number,
                "offset": str(event.offset),
                "body": event.body_as_str(),
            }
        )
        ctx.update_checkpoint(event)
        if len(events) >= args.expect:
            done.set()

    def on_error(_ctx, err):
        errors.append("".join(traceback.format_exception(type(err), err, err.__traceback__)))

    worker = threading.Thread(
        target=client.receive,
        kwargs={
            "on_event": on_event,
            "on_error": on_error,
            "partition_id": args.partition,
            "max_wait_time": 1,
        },
        daemon=True,
    )
    worker.start()
    done.wait(args.timeout)
    # Give a possibly duplicated/extra event a moment to show up so the test can catch it.
    time.sleep(1.0)
    client.close()
    worker.join(10)
    return {"events": events, "errors": errors}


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fqns")
    f.add_argument("--eh-conn", required=True)
    f.add_argument("--hub", required=True)
    for name in ("list", "update"):
        s = sub.add_parser(name)
        s.add_argument("--storage-conn", required=True)
        s.add_argument("--container", required=True)
        s.add_argument("--fqns", required=True)
        s.add_argument("--hub", required=True)
        s.add_argument("--cg", required=True)
        if name == "update":
            s.add_argument("--partition", required=True)
            s.add_argument("--offset", required=True)
            s.add_argument("--seq", type=int, required=True)
    c = sub.add_parser("consume")
    c.add_argument("--eh-conn", required=True)
    c.add_argument("--hub", required=True)
    c.add_argument("--storage-conn", required=True)
    c.add_argument("--container", required=True)
    c.add_argument("--cg", required=True)
    c.add_argument("--partition", required=True)
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    out = {"fqns": cmd_fqns, "list": cmd_list, "update": cmd_update, "consume": cmd_consume}[args.cmd](args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
