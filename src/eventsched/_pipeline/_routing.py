"""Handler registrations and the routing table the workers read on every event."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .._events import Event, EventTypeLike
from .._invoke import is_async

__all__ = [
    "ALL_EVENTS",
    "AsyncHandler",
    "Decorator",
    "Handler",
    "HandlerFunc",
    "Route",
    "SlowRoute",
    "SyncHandler",
]

#: Subscribe to this to receive every event.
ALL_EVENTS = "*"

AsyncHandler: TypeAlias = Callable[[Event], Awaitable[Any]]
SyncHandler: TypeAlias = Callable[[Event], Any]
HandlerFunc: TypeAlias = AsyncHandler | SyncHandler


@dataclass(frozen=True, slots=True, eq=False)
class Handler:
    """One subscription: a function, the event type it listens to, and its options."""

    event_type: EventTypeLike
    func: HandlerFunc
    timeout: float | None
    is_async: bool
    name: str = field(default="")
    fast: bool = field(default=False)
    """Whether the worker may await it directly: async and no timeout scope to enter."""


#: Given a registration, the function to call in its place (see HandlerRegistry.decorate).
Decorator: TypeAlias = Callable[[Handler], HandlerFunc]


class SlowRoute(tuple[Handler, ...]):
    """The handlers of a type when at least one needs a timeout scope or a thread."""

    __slots__ = ()


#: What the workers look up per event, shaped so the common cases cost least: one
#: plain async handler is the function itself (awaited directly, cheaper than a
#: loop over a 1-tuple); several plain async handlers are a plain tuple of functions;
#: anything with a timeout or a thread is a :class:`SlowRoute` of :class:`Handler`.
Route: TypeAlias = AsyncHandler | tuple[AsyncHandler, ...] | SlowRoute


class Routes(dict[EventTypeLike, Route]):
    """Event type -> the handlers to call, in order; a type nobody subscribed to gets
    the ``"*"`` handlers. One lookup (``routes[event.type]``) per event."""

    __slots__ = ("wildcard",)

    def __init__(self) -> None:
        super().__init__()
        self.wildcard: Route = ()

    def __missing__(self, event_type: EventTypeLike) -> Route:
        # Not cached: event types can be any strings, so the table could grow forever.
        return self.wildcard


def _route(handlers: tuple[Handler, ...]) -> Route:
    if not all(handler.fast for handler in handlers):
        return SlowRoute(handlers)
    if len(handlers) == 1:
        return handlers[0].func
    return tuple(handler.func for handler in handlers)


class HandlerRegistry:
    """Handlers by event type, flattened into a routing table rebuilt on change.

    The table is one object for the registry's whole life, updated in place, so that
    workers can hold it in a local variable; the tuples in it are replaced, never
    mutated, so a worker finishes an event with the handlers it started with.
    """

    __slots__ = ("_by_type", "_decorated", "_decorator", "routes")

    def __init__(self) -> None:
        self._by_type: dict[EventTypeLike, list[Handler]] = {}
        self.routes = Routes()
        self._decorator: Decorator | None = None
        # Registration -> the same registration calling the decorated function. Kept so
        # that a rebuild does not decorate again: the decorated function is the key of
        # its hung calls (see _invoke), which must outlive the rebuild.
        self._decorated: dict[Handler, Handler] = {}

    def decorate(self, decorator: Decorator) -> None:
        """Route every handler, registered or to come, through ``decorator(handler)``.

        What tracing uses (eventsched.tracing): the wrapping happens here, when the
        routing table is built, so that a scheduler without it pays nothing per event.
        One decorator per registry; the registrations themselves are unchanged, so
        ``off()`` and the error reports still find them by the function given to ``on()``.
        """
        if self._decorator is not None:
            raise ValueError("this scheduler's handlers are already decorated")
        self._decorator = decorator
        self._rebuild()

    def add(self, event_type: EventTypeLike, func: HandlerFunc, timeout: float | None) -> Handler:
        if not callable(func):
            raise TypeError(f"handler for {event_type!r} must be callable, not {func!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"handler timeout must be a positive number of seconds, not {timeout!r}"
            )
        name = getattr(func, "__qualname__", None) or repr(func)
        asynchronous = is_async(func)
        handler = Handler(
            event_type, func, timeout, asynchronous, name, asynchronous and timeout is None
        )
        self._by_type.setdefault(event_type, []).append(handler)
        self._rebuild()
        return handler

    def remove(self, event_type: EventTypeLike, func: HandlerFunc) -> bool:
        handlers = self._by_type.get(event_type, [])
        for index, handler in enumerate(handlers):
            if handler.func is func or handler.func == func:
                del handlers[index]
                self._decorated.pop(handler, None)
                self._rebuild()
                return True
        return False

    def all(self) -> Iterable[Handler]:
        for handlers in self._by_type.values():
            yield from handlers

    def find(self, event_type: EventTypeLike, func: HandlerFunc) -> Handler | None:
        """The registration of ``func`` that handles ``event_type`` (for error reports)."""
        for registered in (event_type, ALL_EVENTS):
            for handler in self._by_type.get(registered, ()):
                if handler.func is func or self._routed(handler).func is func:
                    return handler
        return None

    def _routed(self, handler: Handler) -> Handler:
        """The registration as the routing table holds it: decorated, if asked to be."""
        decorator = self._decorator
        if decorator is None:
            return handler
        routed = self._decorated.get(handler)
        if routed is None:
            routed = dataclasses.replace(handler, func=decorator(handler))
            self._decorated[handler] = routed
        return routed

    def _rebuild(self) -> None:
        routed = self._routed
        wildcard = tuple(routed(handler) for handler in self._by_type.get(ALL_EVENTS, ()))
        table = {
            event_type: _route(tuple(routed(handler) for handler in handlers) + wildcard)
            for event_type, handlers in self._by_type.items()
            if event_type != ALL_EVENTS and handlers
        }
        # Changed in place, never emptied on the way: on()/off() may run on another
        # thread while a worker reads the table, and between a clear() and the refill
        # that worker would find no route for a type that has handlers. A key read
        # meanwhile gives its old route or its new one, as if the call came just
        # before or just after.
        routes = self.routes
        routes.update(table)
        routes.wildcard = _route(wildcard)
        for stale in [key for key in routes if key not in table]:
            del routes[stale]
