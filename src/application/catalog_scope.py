"""One catalog per request: a scope within which every read of the catalog read model
answers from the snapshot the first read found (a page shows one catalog, and asks the
database once). The portal opens the scope around each request (``api.web.one_read``);
the cached reader (``projections.catalog_cache``) honours it."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# A list, set once per scope: the worker threads a request's handlers run in get a copy
# of the context, which refers to the same list, so what one of them pins the next sees.
_pinned: ContextVar[list[Any] | None] = ContextVar("catalog_pinned", default=None)


@contextmanager
def one_catalog_read() -> Iterator[None]:
    """Within this block (one request), the catalog is read once."""
    token = _pinned.set([])
    try:
        yield
    finally:
        _pinned.reset(token)


def pinned_snapshot() -> list[Any] | None:
    """The current scope's pin (empty until the first read; None outside any scope)."""
    return _pinned.get()
