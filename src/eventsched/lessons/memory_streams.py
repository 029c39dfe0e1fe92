"""Lesson: memory object streams, anyio's channels between tasks.

``send, receive = anyio.create_memory_object_stream[T](max_buffer_size)`` gives two
ends. The rules that matter are about *closing*, because that is how the tasks on each
end learn that the other is gone:

* closing the send end (``async with send:`` or ``send.close()``) ends the receiver's
  ``async for`` once the buffer is empty: no sentinel value, no extra flag;
* sending when every receive end is closed raises ``BrokenResourceError`` at once,
  instead of filling a buffer nobody will read;
* ``clone()`` makes another handle on the same end. Give each producer its own clone
  of the send end and each consumer its own clone of the receive end, and close the
  originals: the consumers' loops end when the *last* producer closes its clone, and
  every item goes to exactly one consumer.

The buffer size is the backpressure. With ``max_buffer_size=0`` (the default) there is
no buffer at all: ``await send(x)`` waits until a receiver takes ``x``, so a producer
can never get ahead of its consumer; ``send_nowait`` raises ``WouldBlock`` unless a
receiver is already waiting. With a buffer of ``n``, the producer may run ``n`` items
ahead, and then ``await send`` waits. An unbounded buffer (``math.inf``) removes the
backpressure: see the ``bounded-buffers`` lesson.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import sniffio

from ._base import Lesson

ITEMS = 5
"""Items sent in the closing part."""
PER_PRODUCER = 20
"""Items each of the two producers sends in the clone part."""
BUFFER = 3
"""The small buffer compared with none."""


@dataclass(frozen=True, slots=True)
class MemoryStreamsOutcome:
    """What the demonstration measured."""

    backend: str
    received_before_end: int
    """Items the ``async for`` got before it ended when the send end was closed."""
    send_to_closed: str
    """What sending raised once the receive end was closed."""
    clone_received: int
    """Items received in all by two consumer clones from two producer clones."""
    clone_distinct: int
    """Distinct ones among them (each item to exactly one consumer)."""
    clone_split: tuple[int, int]
    """How many each consumer got."""
    clone_loops_ended: bool
    """Both consumers' loops ended when the last producer closed its clone."""
    ahead_unbuffered: int
    """Items ``send_nowait`` accepted with no receiver waiting, buffer 0."""
    ahead_buffered: int
    """The same with a buffer of BUFFER."""
    most_ahead_unbuffered: int
    """Most items sent and not yet received at any moment, buffer 0, ``await send``."""

    @property
    def claim(self) -> str:
        return (
            "Closing the send end ends async for; sending to a closed receiver raises "
            "BrokenResourceError; with clones each item reaches one consumer and the loops "
            "end with the last producer; with no buffer a producer is never ahead of its "
            f"consumer, with a buffer of {BUFFER} it runs {BUFFER} ahead."
        )

    @property
    def headline(self) -> str:
        return (
            f"async for ended after {self.received_before_end} of {ITEMS}; sending to a "
            f"closed receiver raised {self.send_to_closed}; the producer ran "
            f"{self.ahead_unbuffered} ahead with buffer 0, {self.ahead_buffered} with "
            f"buffer {BUFFER}"
        )

    @property
    def held(self) -> bool:
        return (
            self.received_before_end == ITEMS
            and self.send_to_closed == "BrokenResourceError"
            and self.clone_received == self.clone_distinct == 2 * PER_PRODUCER
            and self.clone_loops_ended
            and self.ahead_unbuffered == 0
            and self.ahead_buffered == BUFFER
            and self.most_ahead_unbuffered <= 1
        )

    def figures(self) -> list[str]:
        return [
            f"{ITEMS} sent, then the send end closed: async for received "
            f"{self.received_before_end} and ended",
            f"receive end closed, then send(): raised {self.send_to_closed}",
            f"2 producer clones x {PER_PRODUCER} items, 2 consumer clones: received "
            f"{self.clone_received}, distinct {self.clone_distinct}, split "
            f"{self.clone_split[0]} + {self.clone_split[1]}; both loops ended: "
            f"{self.clone_loops_ended}",
            f"send_nowait with nobody receiving: accepted {self.ahead_unbuffered} with "
            f"buffer 0, {self.ahead_buffered} with buffer {BUFFER}",
            f"buffer 0, await send against a consumer: at most "
            f"{self.most_ahead_unbuffered} item sent and not yet received",
        ]


async def _closing_ends_the_loop() -> int:
    send, receive = anyio.create_memory_object_stream[int](ITEMS)
    async with send:  # leaving this block closes the send end
        for n in range(ITEMS):
            await send.send(n)
    received = 0
    async with receive:
        async for _ in receive:  # ends by itself: nothing more can come
            received += 1
    return received


async def _send_to_closed() -> str:
    send, receive = anyio.create_memory_object_stream[int](ITEMS)
    receive.close()  # the consumer is gone
    with send:
        try:
            await send.send(1)
        except anyio.BrokenResourceError as error:
            return type(error).__name__
    return "nothing"


async def _clones() -> tuple[int, int, tuple[int, int], bool]:
    send, receive = anyio.create_memory_object_stream[int]()
    got: list[list[int]] = [[], []]
    ended = [False, False]

    async def produce(out: anyio.abc.ObjectSendStream[int], first: int) -> None:
        async with out:  # each producer closes its own clone
            for n in range(first, first + PER_PRODUCER):
                await out.send(n)

    async def consume(inbox: anyio.abc.ObjectReceiveStream[int], me: int) -> None:
        async with inbox:
            async for n in inbox:
                got[me].append(n)
        ended[me] = True

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg, send, receive:
            # Leaving the block closes the originals (once cloned, they are not needed).
            for me in (0, 1):
                tg.start_soon(consume, receive.clone(), me)
            for first in (0, PER_PRODUCER):
                tg.start_soon(produce, send.clone(), first)
    every = got[0] + got[1]
    return len(every), len(set(every)), (len(got[0]), len(got[1])), all(ended)


def _accepted_without_receiver(buffer: int) -> int:
    send, receive = anyio.create_memory_object_stream[int](buffer)
    accepted = 0
    with send, receive:
        try:
            while accepted <= buffer:
                send.send_nowait(accepted)
                accepted += 1
        except anyio.WouldBlock:
            pass
    return accepted


async def _most_ahead() -> int:
    send, receive = anyio.create_memory_object_stream[int](0)
    sent = received = most = 0

    async def consume() -> None:
        nonlocal received
        async with receive:
            async for _ in receive:
                received += 1
                await anyio.lowlevel.checkpoint()  # a consumer with work to do

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async with send:
                for n in range(ITEMS * 4):
                    await send.send(n)  # returns once the consumer has taken n
                    sent += 1
                    most = max(most, sent - received)
    return most


async def demonstrate() -> MemoryStreamsOutcome:
    """Run every part on the current backend and return what was seen."""
    backend = sniffio.current_async_library()
    total, distinct, split, ended = await _clones()
    return MemoryStreamsOutcome(
        backend=backend,
        received_before_end=await _closing_ends_the_loop(),
        send_to_closed=await _send_to_closed(),
        clone_received=total,
        clone_distinct=distinct,
        clone_split=split,
        clone_loops_ended=ended,
        ahead_unbuffered=_accepted_without_receiver(0),
        ahead_buffered=_accepted_without_receiver(BUFFER),
        most_ahead_unbuffered=await _most_ahead(),
    )


LESSON = Lesson(
    name="memory-streams",
    title="Memory object streams: closing ends async for, clone() for many, buffer 0",
    idea=(
        "A memory object stream has a send end and a receive end. Closing one tells the "
        "other: async for ends, send raises BrokenResourceError. clone() shares an end "
        "among several tasks. The buffer size is the backpressure: with none, await send "
        "waits for a receiver."
    ),
    demonstrate=demonstrate,
    differences=(
        "The same through anyio on both backends; trio's memory channels are the "
        "original. asyncio.Queue (before Python 3.13's shutdown()) has no ends to close: "
        "its consumers need a sentinel value or a cancellation to stop."
    ),
)
