"""Lesson: correlation ids that follow the work, through context variables.

When three orders are processed at once, their log lines and events interleave. To
tell which line belongs to which order, every event carries a ``correlation_id``
shared by the whole chain of work, and a ``causation_id`` naming the event that
caused it. Passing these ids through every function call by hand is tedious and
easily forgotten; eventsched does not ask you to.

How: while a handler runs, eventsched puts the event it is handling in a *context
variable* (``contextvars``). ``Event.create`` (and so ``emit``) reads it: a new event
inherits the correlation id and names the handled event as its cause. A context
variable is per task, and a new task starts with a *copy* of the context of the task
that started it. So the ids follow the work:

* into events a handler emits, and the handlers of those, and so on;
* into child tasks the handler starts (``start_soon`` copies the context);
* into worker threads (``anyio.to_thread.run_sync`` runs the function in a copy).

But not through a message to a task that was already running: the context travels
with the *starting* of a task, not with the data you send it. A long-lived background
task that receives work over a stream must be handed the correlation id explicitly.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import anyio
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream

from .. import Event, EventScheduler
from ._base import Lesson

ORDERS = 3
#: Events each order's chain should end up with (see the handlers below).
CHAIN = (
    "order_placed",
    "payment_requested",
    "payment_captured",
    "stock_reserved",
    "stock_reserved",
    "receipt_printed",
    "shipped",
)
WAIT_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class CorrelationOutcome:
    """What the demonstration measured."""

    backend: str
    chains: int
    """Distinct correlation ids among the events that passed the id along."""
    complete_chains: int
    """Chains holding exactly the expected events (one order's work, nothing else)."""
    causes_in_chain: bool
    """Every event's causation id names an event of its own chain."""
    lost_ids: int
    """Events sent to the background task *without* the id: each started a new chain."""
    interleavings: int
    """How often consecutive events belonged to different orders (work was concurrent)."""
    tree: tuple[str, ...]
    """The first order's chain drawn as a tree: each event under the one that caused it."""
    roots: tuple[str, ...]
    """Types of that chain's events with no cause in it (the tree's roots)."""
    reached_from_order: int
    """Events of that chain that are ``order_placed`` or reached from it by causation ids."""

    @property
    def headline(self) -> str:
        return (
            f"{ORDERS} concurrent orders gave {self.complete_chains} complete chains of "
            f"{len(CHAIN)} events; {self.lost_ids} messages without the id lost it"
        )

    @property
    def claim(self) -> str:
        return (
            f"{ORDERS} orders handled concurrently give {ORDERS} chains, each holding "
            "exactly its own order's events, whether emitted by a handler, a child task or "
            "a worker thread; a message to an already running task loses the id unless it "
            "is passed explicitly."
        )

    @property
    def held(self) -> bool:
        return (
            self.chains == ORDERS
            and self.complete_chains == ORDERS
            and self.causes_in_chain
            and self.lost_ids == ORDERS
            and self.roots == ("order_placed", "shipped")
            and self.reached_from_order == len(CHAIN) - 1
        )

    def figures(self) -> list[str]:
        return [
            f"events emitted: {ORDERS * len(CHAIN) + self.lost_ids}, in {self.chains} chains "
            f"(+ {self.lost_ids} that lost the id); the order changed "
            f"{self.interleavings} times between consecutive events",
            f"chains with exactly their order's {len(CHAIN)} events ({_names(CHAIN)}): "
            f"{self.complete_chains} of {ORDERS}",
            f"every causation id points into its own chain: {self.causes_in_chain}",
            f"messages to the running background task without the id: {self.lost_ids} "
            "events, each a new chain of its own",
            f"one chain as a tree (type, correlation id, causation id): "
            f"{self.reached_from_order} of {len(CHAIN)} events are order_placed and what it "
            "caused; `shipped`, given only the correlation id, is a root of its own:",
            *self.tree,
        ]


def _names(types: tuple[str, ...]) -> str:
    """``a, b x2, c``: each type once, with its count when it repeats."""
    counts = {t: types.count(t) for t in types}
    return ", ".join(t if n == 1 else f"{t} x{n}" for t, n in counts.items())


async def demonstrate() -> CorrelationOutcome:
    """Process three orders concurrently and check where their ids went."""
    scheduler = EventScheduler(workers=2)
    events: list[Event] = []
    all_in = anyio.Event()
    expected = ORDERS * len(CHAIN) + ORDERS
    send_to_shipper, shipper_inbox = anyio.create_memory_object_stream[tuple[int, str]](100)

    @scheduler.on("*")
    async def record(event: Event) -> None:
        if event.type in CHAIN or event.type == "shipped_without_id":
            events.append(event)
            if len(events) == expected:
                all_in.set()

    @scheduler.on("order_placed")
    async def place(event: Event) -> None:
        order = event.data["order"]
        # 1. An event emitted by a handler inherits the id: nothing to pass.
        await scheduler.emit("payment_requested", {"order": order})

        # 2. Child tasks copy the handler's context when they start.
        async def reserve(item: str) -> None:
            await anyio.lowlevel.checkpoint()
            await scheduler.emit("stock_reserved", {"order": order, "item": item})

        async with anyio.create_task_group() as tg:
            tg.start_soon(reserve, "book")
            tg.start_soon(reserve, "pen")

        # 3. A worker thread runs in a copy of the context too.
        def print_receipt() -> None:
            scheduler.emit_nowait("receipt_printed", {"order": order})

        await anyio.to_thread.run_sync(print_receipt)

        # 4. A message to a task that is already running carries no context: pass the
        # correlation id in the message itself.
        await send_to_shipper.send((order, event.correlation_id))

    @scheduler.on("payment_requested")
    async def pay(event: Event) -> None:
        await scheduler.emit("payment_captured", {"order": event.data["order"]})

    async def shipper(inbox: MemoryObjectReceiveStream[tuple[int, str]]) -> None:
        """A long-lived task, started before any order: its context is its own."""
        async with inbox:
            async for order, correlation_id in inbox:
                # Without the id: this event starts a chain of its own.
                await scheduler.emit("shipped_without_id", {"order": order})
                # With the id, passed along explicitly: it joins the order's chain.
                await scheduler.emit("shipped", {"order": order}, correlation_id=correlation_id)

    with anyio.fail_after(WAIT_LIMIT):
        async with scheduler, anyio.create_task_group() as tg:
            tg.start_soon(shipper, shipper_inbox)
            for order in range(ORDERS):
                await scheduler.emit("order_placed", {"order": order})
            await all_in.wait()
            send_to_shipper.close()  # the shipper ends when its inbox is closed

    return _analyse(sniffio.current_async_library(), events)


def _analyse(backend: str, events: list[Event]) -> CorrelationOutcome:
    chained = [e for e in events if e.type != "shipped_without_id"]
    by_chain: dict[str, list[Event]] = defaultdict(list)
    for event in chained:
        by_chain[event.correlation_id].append(event)
    complete = sum(
        sorted(str(e.type) for e in chain) == sorted(CHAIN)
        and len({e.data["order"] for e in chain}) == 1
        for chain in by_chain.values()
    )
    chain_of = {e.id: e.correlation_id for e in chained}
    causes_ok = all(
        e.causation_id is None or chain_of.get(e.causation_id) == e.correlation_id for e in chained
    )
    lost = sum(
        e.correlation_id == e.id and e.correlation_id not in by_chain
        for e in events
        if e.type == "shipped_without_id"
    )
    first = by_chain[chained[0].correlation_id] if chained else []
    tree, roots, reached = _tree(first)
    orders = [e.data["order"] for e in chained]
    switches = sum(a != b for a, b in itertools.pairwise(orders))
    return CorrelationOutcome(
        backend=backend,
        chains=len(by_chain),
        complete_chains=complete,
        causes_in_chain=causes_ok,
        lost_ids=lost,
        interleavings=switches,
        tree=tree,
        roots=roots,
        reached_from_order=reached,
    )


def _tree(chain: list[Event]) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """Draw ``chain`` with every event under its cause (lines indented, to print as they
    are); its roots; how many events the order's subtree holds."""
    ids = {e.id for e in chain}
    children: dict[str | None, list[Event]] = defaultdict(list)
    for event in chain:
        cause = event.causation_id if event.causation_id in ids else None
        children[cause].append(event)
    short = {e.id: f"#{n}" for n, e in enumerate(chain, 1)}  # the real ids are long
    lines: list[str] = []

    def draw(event: Event, depth: int) -> int:
        cause = short.get(event.causation_id or "", "-")
        corr = short.get(event.correlation_id, event.correlation_id)
        lines.append(
            f"  {'    ' * depth}{short[event.id]} {event.type} "
            f"(correlation {corr}, caused by {cause})"
        )
        return 1 + sum(draw(child, depth + 1) for child in children[event.id])

    reached = 0
    for root in children[None]:
        below = draw(root, 0)
        if root.type == "order_placed":
            reached = below
    roots = tuple(sorted(str(root.type) for root in children[None]))
    return tuple(lines), roots, reached


LESSON = Lesson(
    name="correlation",
    title="Correlation with context variables: ids that follow work across tasks",
    idea=(
        "Every event carries a correlation id shared by its whole chain of work. "
        "eventsched keeps the event being handled in a context variable, so events "
        "emitted while handling it inherit the id: in the handler, in tasks it starts, in "
        "worker threads. A message to a task that was already running does not carry the "
        "context: pass the id in the message."
    ),
    demonstrate=demonstrate,
    differences=(
        "None: asyncio and trio both give a new task a copy of the context of the task "
        "that started it, and anyio's worker threads run in a copy too."
    ),
)
