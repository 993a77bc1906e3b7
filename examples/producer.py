#!/usr/bin/env python3
"""Sample producer: sends Azure diagnostic records to an event hub the way Azure Monitor does,
as {"records":[...]} JSON events, for trying azlog-hub end to end.

Uses the official Python SDK (pip install azure-eventhub). The connection string comes from the
environment variable EVENTHUB_CONNECTION_STRING (portal: namespace or hub -> Shared access
policies -> a policy with "Send"), never from the command line. With the bundled emulator
(`azlog-hub emulator --hub azure-logs:4`) use its development string:

    export EVENTHUB_CONNECTION_STRING='Endpoint=sb://localhost:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true'
    python examples/producer.py --hub azure-logs --count 10 --per-event 4

Records are taken from examples/records/azure-sample.json (or FILE: a {"records":[...]}
envelope, a JSON array, or NDJSON) and cycled until `--count` events of `--per-event` records
each were sent. Without `--partition` events are spread over the partitions by the service.
Prints one summary line: events, records and bytes sent.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from azure.eventhub import EventData, EventHubProducerClient

DEFAULT_RECORDS = Path(__file__).resolve().parent / "records" / "azure-sample.json"


def load_records(path):
    """The records of a {"records":[...]} envelope, a JSON array, a single object or NDJSON."""
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict) and isinstance(doc.get("records"), list):
        return doc["records"]
    if isinstance(doc, list):
        return doc
    return [doc]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_RECORDS),
                        help="records to send (default: %(default)s)")
    parser.add_argument("--hub", help="event hub name (default: EntityPath of the connection string)")
    parser.add_argument("--count", type=int, default=1, help="events to send (default 1)")
    parser.add_argument("--per-event", type=int, default=0,
                        help="records per event (default: all records of the file in one event)")
    parser.add_argument("--partition", help="send every event to this partition id")
    args = parser.parse_args()

    conn = os.environ.get("EVENTHUB_CONNECTION_STRING")
    if not conn:
        sys.exit("set EVENTHUB_CONNECTION_STRING to the namespace or hub connection string")
    if args.count < 1 or args.per_event < 0:
        sys.exit("--count must be at least 1 and --per-event at least 0")
    records = load_records(args.file)
    if not records:
        sys.exit(f"{args.file} holds no records")
    per_event = args.per_event or len(records)

    kwargs = {"eventhub_name": args.hub} if args.hub else {}
    producer = EventHubProducerClient.from_connection_string(conn, **kwargs)
    sent_records = sent_bytes = 0
    batch_kwargs = {"partition_id": args.partition} if args.partition is not None else {}
    with producer:
        batch = producer.create_batch(**batch_kwargs)
        in_batch = 0
        for n in range(args.count):
            body = json.dumps({"records": [records[(n * per_event + i) % len(records)]
                                           for i in range(per_event)]})
            event = EventData(body)
            try:
                batch.add(event)
            except ValueError:  # the batch is full: send it and start a new one
                if in_batch == 0:
                    sys.exit(f"one event of {len(body)} bytes is larger than the hub allows; "
                             "lower --per-event")
                producer.send_batch(batch)
                batch = producer.create_batch(**batch_kwargs)
                batch.add(event)
                in_batch = 0
            in_batch += 1
            sent_records += per_event
            sent_bytes += len(body)
        if in_batch:
            producer.send_batch(batch)
    print(f"sent {args.count} events, {sent_records} records, {sent_bytes} bytes"
          + (f" to partition {args.partition}" if args.partition is not None else ""))


if __name__ == "__main__":
    main()
