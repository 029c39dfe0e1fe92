"""Checks of an event's type and lineage ids, run where the event is made or admitted.

A type or an id that fails here is refused at the emit (and counted there), never
later in a worker, where the user's ``__hash__`` or a forged log line would do harm.
"""

from __future__ import annotations

from enum import Enum

from ._eventdata import _refuse
from ._exceptions import InvalidEventError
from ._invoke import describe_error

__all__ = ["MAX_ID_LENGTH"]

#: Longest ``correlation_id`` or ``causation_id`` accepted, in characters. Ids are
#: repeated in every log line of their chain, so a long one costs on every record;
#: 256 leaves room for a UUID, a trace id or a URL-like key with a prefix.
MAX_ID_LENGTH = 256


def _admit_type(event_type: object) -> str | Enum:
    """An event type other than a plain ``str``, made safe for the workers' routing.

    The workers look every event's type up in a dict: a ``__hash__`` or ``__eq__`` of
    the user's running there would crash a worker, not the emit that brought it. So a
    ``str`` subclass (not an Enum) becomes the plain ``str`` of its value, read through
    the base class so none of its methods run. An Enum member is kept (handlers may
    subscribe to the member itself): if its class hashes and compares with the
    standard library's methods, the class is remembered as safe; otherwise hashing and
    comparing it are tried here, in the emitter.
    """
    kind = type(event_type)
    if isinstance(event_type, Enum):
        if kind.__hash__ in _STANDARD_HASH and kind.__eq__ in _STANDARD_EQ:
            if len(_SAFE_TYPE_CLASSES) < _SAFE_TYPE_CLASSES_MAX:
                _SAFE_TYPE_CLASSES.add(kind)
            return event_type
        try:
            hash(event_type)
            event_type == event_type  # noqa: B015 (the user's __eq__ is what is tried)
        except Exception as error:  # the user's code: refused here, not in a worker
            _refuse(
                f"event type {kind.__qualname__} cannot be hashed or compared: "
                f"{describe_error(error)}"
            )
        return event_type
    if isinstance(event_type, str):
        return str.__str__(event_type)
    raise InvalidEventError(
        f"event type must be a str or an Enum member, not {_kind_of(event_type)}"
    )


# Enum classes whose members need no check at admission (see _admit_type); bounded,
# since classes can be made at run time.
_SAFE_TYPE_CLASSES: set[type] = {str}  # _events adds EventType
_SAFE_TYPE_CLASSES_MAX = 1024
_STANDARD_HASH = (Enum.__hash__, str.__hash__, int.__hash__, object.__hash__)
_STANDARD_EQ = (object.__eq__, str.__eq__, int.__eq__)


def _admit_id(value: object, field: str) -> str:
    """A ``correlation_id`` or ``causation_id`` checked: printable text, not too long.

    Ids go into every log line and JSON record of their chain, so they must be text
    without control characters (a newline would forge a log line) or lone surrogates
    (no UTF-8 form), and bounded (:data:`MAX_ID_LENGTH`). A ``str`` subclass is stored
    as the plain ``str`` of its value, read through the base class.
    """
    if not isinstance(value, str):
        _refuse(f"{field} must be a str, not {_kind_of(value)}")
    text = str.__str__(value)
    if len(text) > MAX_ID_LENGTH:
        _refuse(f"{field} is {len(text)} characters long, over the limit of {MAX_ID_LENGTH}")
    if not text.isprintable():
        _refuse(f"{field} {text!r} holds a control character or a lone surrogate")
    return text


def _kind_of(value: object) -> str:
    # The type's name only: repr() of the value would run the user's code, or echo
    # something huge into the message.
    return f"a value of type {type(value).__qualname__}"


def _is_plain_id(value: object) -> bool:
    """Whether an id needs no more checking: a plain, short, printable str."""
    return value.__class__ is str and len(value) <= MAX_ID_LENGTH and value.isprintable()
