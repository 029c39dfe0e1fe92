"""The event pipeline: the bounded queue, the worker loop, routing and the ledger.

* ``_queue``: the memory object stream, the overflow policy, waiting emitters.
* ``_worker``: the handler tasks' loop and the dispatch to handlers.
* ``_routing``: handler registrations and the routing table the workers read.
* ``_ledger``: every counter, the latency sample, drop reports, handler failures.
* ``_stats``: the public records (:class:`Statistics`, the policy and reason enums).
* ``_summary``: the final summary table.
* ``_facade``: the scheduler's event methods (``on``, ``emit``, ``statistics``...).
"""

from ._ledger import Ledger, report_drops, report_drops_now
from ._queue import PROTECTED, EventQueue
from ._routing import ALL_EVENTS, Handler, HandlerFunc, HandlerRegistry
from ._stats import DropReason, OverflowPolicy, RejectReason, Statistics
from ._summary import format_summary, log_summary
from ._worker import CHECKPOINT_EVERY, work

__all__ = [
    "ALL_EVENTS",
    "CHECKPOINT_EVERY",
    "PROTECTED",
    "DropReason",
    "EventQueue",
    "Handler",
    "HandlerFunc",
    "HandlerRegistry",
    "Ledger",
    "OverflowPolicy",
    "RejectReason",
    "Statistics",
    "format_summary",
    "log_summary",
    "report_drops",
    "report_drops_now",
    "work",
]
