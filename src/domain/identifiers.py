"""Deterministic identities derived from natural keys.

An aggregate whose identity comes from its natural key (a catalog code, an
e-mail address, a resource and a day) cannot be created twice: a second
creation collides on the event store's primary key.
"""

from uuid import UUID, uuid5

NAMESPACE = UUID("8f5d8c1e-6a0e-4f5a-9a40-0f3b6b1e2a77")


def derived_id(kind: str, *parts: str) -> UUID:
    """A UUID that is a pure function of the kind and the parts."""
    return uuid5(NAMESPACE, "/".join((kind, *parts)))
