"""moto_server, serving one request at a time: run by scripts/moto as `python moto-server.py HOST PORT`.

moto's DynamoDB is not safe under concurrent requests: TransactWriteItems checks each condition,
writes as it goes, and on a failed condition restores a copy of the table taken when it started.
Served on several threads at once, two transactions can both pass the same version check, and a
cancelled one can roll back another's committed write. DynamoDB serializes conflicting
transactions; serving requests one at a time makes moto do the same. Connections are still served
on their own threads, so an idle keep-alive connection never holds up the others.

That copy of the whole table is also slow: a few tenths of a second per transaction on a table of
ten thousand items. Instead, the items a transaction touches are saved before it runs and put
back if it fails; with one request at a time, that is the same all-or-nothing outcome.
"""

import logging
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


import copy
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_saved_by_caller = threading.local()


class _CopyUnlessSaved:
    """Stands for the `copy` module in moto.dynamodb.models: while a transaction's items are saved
    by `_transact_write_items`, the copy of a whole table it would take is skipped."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table) and getattr(_saved_by_caller, "active", False):
            return value
        return copy.deepcopy(value, memo)


_original_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    try:
        saved = []
        for transact_item in transact_items:
            op_type, op = next(iter(transact_item.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            before = self.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, copy.deepcopy(before)))
    except Exception:
        # Something moto itself will refuse: let it, the original way.
        return _original_transact_write_items(self, transact_items)
    _saved_by_caller.active = True
    try:
        return _original_transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, before in reversed(saved):
            self.delete_item(table_name, key)
            if before is not None:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise
    finally:
        _saved_by_caller.active = False


dynamodb_models.copy = _CopyUnlessSaved()
DynamoDBBackend.transact_write_items = _transact_write_items


class OneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # The whole response is produced under the lock.
            return [b"".join(self.app(environ, start_response))]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # No line per request: a test run sends tens of thousands.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        OneAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
