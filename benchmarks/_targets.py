"""The targets the benchmarks state, compared with what a run measured.

Each script builds its ``Verdict``s from its own numbers, prints their lines, and returns
``exit_code(verdicts, args.no_check)``: 1 with one clear line on stderr when a target was
missed (0 with ``--no-check``, which still reports it). A target the run did not measure
(another concurrency, another scenario) is said so and fails nothing.
"""

from __future__ import annotations

import argparse
import operator
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """``what`` must be ``comparison`` ``limit`` (in ``unit``), e.g. slot search p95 < 30 ms
    at 50 clients."""

    what: str
    comparison: str
    limit: float
    unit: str
    where: str = ""  # the conditions it holds under, e.g. "at 50 clients"

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"unknown comparison {self.comparison!r}")

    def __str__(self) -> str:
        text = f"{self.what} {self.comparison} {self.limit:g} {self.unit}".rstrip()
        return f"{text} {self.where}".rstrip()

    def check(self, measured: float | None) -> Verdict:
        return Verdict(self, measured)


@dataclass(frozen=True)
class Verdict:
    target: Target
    measured: float | None  # None: this run did not measure it

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return COMPARISONS[self.target.comparison](self.measured, self.target.limit)

    def line(self) -> str:
        if self.met is None:
            return f"target {self.target}: not measured in this run"
        state = "MET" if self.met else "NOT MET"
        return f"target {self.target}: {state} (measured {self.measured:g} {self.target.unit})"


def add_check_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="report a missed target but exit 0 (default: exit 1 when a target is missed)",
    )


def exit_code(verdicts: Sequence[Verdict], no_check: bool = False) -> int:
    """0 when every measured target was met (or ``no_check``); else 1, saying which."""
    missed = [v for v in verdicts if v.met is False]
    if not missed:
        return 0
    names = "; ".join(f"{v.target} (measured {v.measured:g} {v.target.unit})" for v in missed)
    if no_check:
        print(f"targets missed (ignored: --no-check): {names}", file=sys.stderr)
        return 0
    print(f"FAILED: {len(missed)} target(s) missed: {names}", file=sys.stderr)
    return 1
