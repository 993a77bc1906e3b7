#!/usr/bin/env python3
"""Ownership interop driver for consumer/tests/ownership_python_interop.rs.

Uses the official `azure-eventhub-checkpointstoreblob` BlobCheckpointStore (the store the Python
EventProcessor load-balances with). Every subcommand prints exactly one JSON document on stdout.

  list   --storage-conn CS --container C --fqns F --hub H --cg G
      -> [{"partition_id", "owner_id", "etag", "last_modified_time"}, ...]   (list_ownership)
  claim  --storage-conn CS --container C --fqns F --hub H --cg G --partition P --owner O [--etag E]
      -> the claims that succeeded, same fields (claim_ownership; [] when lost)
  put-verbatim --storage-conn CS --container C --fqns F --hub H --cg G --partition P --owner O
      -> {"name"}: writes an ownership blob the way the Go/Java/Rust SDK processors do, the
         names in the case given (not lowercased), metadata ownerid; with the storage client the package vendors
"""

import argparse
import json
import sys

from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore

FIELDS = ("partition_id", "owner_id", "etag", "last_modified_time")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("list", "claim", "put-verbatim"):
        s = sub.add_parser(name)
        for arg in ("--storage-conn", "--container", "--fqns", "--hub", "--cg"):
            s.add_argument(arg, required=True)
        if name in ("claim", "put-verbatim"):
            s.add_argument("--partition", required=True)
            s.add_argument("--owner", required=True)
            s.add_argument("--etag")
    args = p.parse_args()
    if args.cmd == "put-verbatim":
        # The storage client the checkpoint store package vendors (no azure-storage-blob install).
        from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob import ContainerClient

        name = f"{args.fqns}/{args.hub}/{args.cg}/ownership/{args.partition}"
        with ContainerClient.from_connection_string(args.storage_conn, args.container) as c:
            c.upload_blob(name, b"", metadata={"ownerid": args.owner}, overwrite=True)
        json.dump({"name": name}, sys.stdout)
        sys.stdout.write("\n")
        return
    with BlobCheckpointStore.from_connection_string(args.storage_conn, args.container) as store:
        if args.cmd == "list":
            records = store.list_ownership(args.fqns, args.hub, args.cg)
        else:
            claim = {
                "fully_qualified_namespace": args.fqns,
                "eventhub_name": args.hub,
                "consumer_group": args.cg,
                "partition_id": args.partition,
                "owner_id": args.owner,
            }
            if args.etag is not None:
                claim["etag"] = args.etag
            records = store.claim_ownership([claim])
    json.dump([{f: r.get(f) for f in FIELDS} for r in records], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
