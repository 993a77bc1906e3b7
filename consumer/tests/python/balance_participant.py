"""An official Python SDK processor (EventHubConsumerClient.receive with BlobCheckpointStore)
sharing a consumer group with azlog-hub through the SDK's own load balancing.

Writes one line {"id": <azlogTestId>, "partition": <id>} per received record to --out,
checkpoints every event, and stops (releasing its ownership, as the SDK does on close) once
--stop exists. Used by consumer/tests/eventhubs_balance.rs.
"""
import argparse
import json
import logging
import os
import sys
import threading
import time

from azure.eventhub import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore


class HostOnlyNamespace(BlobCheckpointStore):
    """The Python SDK names an emulator's namespace `host:port` in blob names (real namespaces,
    `<ns>.servicebus.windows.net`, have no port); azlog-hub, like the .NET SDK, uses the host.
    This participant drops the port so both name the same blobs, and changes nothing else."""

    @staticmethod
    def _host(fqns):
        return fqns.split(":")[0]

    def list_ownership(self, fully_qualified_namespace, *args, **kwargs):
        return super().list_ownership(self._host(fully_qualified_namespace), *args, **kwargs)

    def claim_ownership(self, ownership_list, **kwargs):
        for o in ownership_list:
            o["fully_qualified_namespace"] = self._host(o["fully_qualified_namespace"])
        return super().claim_ownership(ownership_list, **kwargs)

    def update_checkpoint(self, checkpoint, **kwargs):
        checkpoint["fully_qualified_namespace"] = self._host(checkpoint["fully_qualified_namespace"])
        return super().update_checkpoint(checkpoint, **kwargs)

    def list_checkpoints(self, fully_qualified_namespace, *args, **kwargs):
        return super().list_checkpoints(self._host(fully_qualified_namespace), *args, **kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conn", required=True, help="Event Hubs connection string with EntityPath")
    ap.add_argument("--storage", required=True, help="storage connection string")
    ap.add_argument("--container", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True, help="the processor stops once this file exists")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--expiry", type=float, default=3.0)
    args = ap.parse_args()
    # The SDK's load-balancing decisions (claims, lost ownership) go to stderr for the test log.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("azure.eventhub._eventprocessor").setLevel(logging.INFO)

    store = HostOnlyNamespace.from_connection_string(args.storage, args.container)
    client = EventHubConsumerClient.from_connection_string(
        args.conn,
        consumer_group="$Default",
        checkpoint_store=store,
        load_balancing_interval=args.interval,
        partition_ownership_expiration_interval=args.expiry,
    )
    out = open(args.out, "a", encoding="utf-8")
    lock = threading.Lock()

    def on_event(ctx, event):
        if event is None:
            return
        body = json.loads(event.body_as_str())
        records = body.get("records", [body]) if isinstance(body, dict) else body
        with lock:
            for r in records:
                out.write(json.dumps({"id": r.get("azlogTestId"), "partition": ctx.partition_id}) + "\n")
            out.flush()
        ctx.update_checkpoint(event)

    def watch_stop():
        while not os.path.exists(args.stop):
            time.sleep(0.1)
        client.close()

    threading.Thread(target=watch_stop, daemon=True).start()
    with client:
        client.receive(on_event=on_event, starting_position="-1")
    out.close()


if __name__ == "__main__":
    main()
