"""A benchmark that misses its stated target exits 1 with a clear line (0 with
``--no-check``); each script compares the number its target is about."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    """A benchmark script as a module (its imports of ``_harness``/``_targets`` resolve
    from the benchmarks folder, as when it runs as a script)."""
    saved = list(sys.path)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved  # the scripts put folders on the path when they load


targets = load("_targets")


def test_a_missed_upper_bound_exits_1_with_a_clear_line(capsys):
    target = targets.Target("slot search p95", "<", 30, "ms", "at 50 clients")
    missed = target.check(592.0)
    assert missed.met is False
    assert missed.line() == (
        "target slot search p95 < 30 ms at 50 clients: NOT MET (measured 592 ms)"
    )
    assert targets.exit_code([missed]) == 1
    assert "FAILED: 1 target(s) missed: slot search p95 < 30 ms at 50 clients" in (
        capsys.readouterr().err
    )


def test_a_met_target_and_one_not_measured_exit_0(capsys):
    target = targets.Target("slot search p95", "<", 30, "ms")
    met, unmeasured = target.check(29.9), target.check(None)
    assert (met.met, unmeasured.met) == (True, None)
    assert met.line().endswith(": MET (measured 29.9 ms)")
    assert unmeasured.line().endswith(": not measured in this run")
    assert targets.exit_code([met, unmeasured]) == 0
    assert capsys.readouterr().err == ""


def test_no_check_reports_the_miss_but_exits_0(capsys):
    missed = targets.Target("rate", ">=", 200, "SIU/s").check(150)
    assert targets.exit_code([missed], no_check=True) == 0
    assert "targets missed (ignored: --no-check): rate >= 200 SIU/s" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("comparison", "limit", "measured", "met"),
    [
        ("<", 30, 30, False),  # the bound itself misses a strict target
        ("<", 30, 29.99, True),
        (">=", 200, 200, True),
        (">=", 200, 199.9, False),
        ("<=", 0, 0, True),
        ("<=", 0, 1, False),
    ],
)
def test_the_comparison_at_the_edges(comparison, limit, measured, met):
    assert targets.Target("x", comparison, limit, "u").check(measured).met is met


def test_an_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match="unknown comparison"):
        targets.Target("x", "~", 1, "u")


def level(clients: int, p95: float) -> dict:
    return {"clients": clients, "rows": {"ALL": {"p95_ms": p95}}}


def test_slot_search_compares_the_level_at_50_clients_only():
    slot_search = load("slot_search")
    [verdict] = slot_search.verdicts([level(1, 5.0), level(50, 592.0)], ["ct-head@riverside"])
    assert (verdict.measured, verdict.met) == (592.0, False)
    [fast] = slot_search.verdicts([level(50, 12.0)], ["ct-head@riverside"])
    assert fast.met is True
    [unmeasured] = slot_search.verdicts([level(10, 500.0)], ["ct-head@riverside"])
    assert unmeasured.met is None
    [healthz] = slot_search.verdicts([level(50, 500.0)], ["healthz"])
    assert healthz.met is None  # GET /healthz is not a slot search


def test_booking_compares_the_level_at_20_clients():
    booking = load("booking")
    [verdict] = booking.verdicts([level(20, 394.0), level(40, 800.0)])
    assert (verdict.measured, verdict.met) == (394.0, False)
    assert booking.verdicts([level(20, 35.0)])[0].met is True


def test_hl7_outbound_needs_every_message_400_per_second_and_half_the_floor_with_two_workers():
    outbound = load("hl7_outbound")
    result = {
        "messages": 2000,
        "acknowledged": 2000,
        "workers": 2,
        "rate_end_to_end_per_s": 450,
        "ratio_to_floor": 0.6,
    }
    assert [v.met for v in outbound.verdicts(result)] == [True, True, True]
    slow = {**result, "rate_end_to_end_per_s": 238, "ratio_to_floor": 0.05}
    assert [v.met for v in outbound.verdicts(slow)] == [True, False, False]
    lost = {**result, "acknowledged": 1990}
    assert [v.met for v in outbound.verdicts(lost)] == [False, True, True]
    one_worker = {**result, "workers": 1, "rate_end_to_end_per_s": 120}
    assert [v.met for v in outbound.verdicts(one_worker)] == [True, None, None]
    no_floor = {k: v for k, v in result.items() if k != "ratio_to_floor"}
    assert [v.met for v in outbound.verdicts(no_floor)] == [True, True, None]


def test_notices_burst_needs_every_reminder_within_60_seconds_with_two_workers():
    burst = load("notices_burst")
    result = {
        "messages": 1000,
        "acknowledged": 1000,
        "workers": 2,
        "seconds_to_all_acknowledged": 18.5,
    }
    assert [v.met for v in burst.verdicts(result)] == [True, True]
    assert [v.met for v in burst.verdicts({**result, "seconds_to_all_acknowledged": 75})] == [
        True,
        False,
    ]
    assert [v.met for v in burst.verdicts({**result, "acknowledged": 990})] == [False, None]
    assert [v.met for v in burst.verdicts({**result, "workers": 1})] == [True, None]


def test_hl7_inbound_needs_300_per_second_from_8_connections():
    inbound = load("hl7_inbound")
    assert inbound.verdicts({"messages_per_second": 917.6}, 8)[0].met is True
    assert inbound.verdicts({"messages_per_second": 250.0}, 8)[0].met is False
    assert inbound.verdicts({"messages_per_second": 250.0}, 2)[0].met is None


def test_access_log_must_sustain_the_read_rate_and_lose_nothing():
    access_log = load("access_log")
    report = {
        "args": {"rate": 500},
        "saturation": {"committed_per_s": 25177},
        "paced": {"batched": {"reads": 5000, "writer": {"written": 5000}}},
    }
    assert [v.met for v in access_log.verdicts(report)] == [True, True]
    report["saturation"]["committed_per_s"] = 400
    report["paced"]["batched"]["writer"]["written"] = 4990
    assert [v.met for v in access_log.verdicts(report)] == [False, False]


def test_auth_overhead_p95_under_2_ms():
    auth = load("auth_overhead")
    assert auth.verdicts([0.4] * 99 + [5.0])[0].met is True
    assert auth.verdicts([2.5] * 100)[0].met is False


def test_orders_and_results_reads_within_twice_the_appointments_read():
    orders = load("orders_results")
    within = orders.verdicts({"/v1/me/orders": 9.0, "/v1/me/results": 5.0, "/v1/appointments": 4.5})
    assert [v.measured for v in within] == [2.0, 1.11]
    assert all(v.met for v in within)
    beyond = orders.verdicts({"/v1/me/orders": 9.1, "/v1/me/results": 4.0, "/v1/appointments": 4.5})
    assert [v.met for v in beyond] == [False, True]
    assert orders.exit_code(beyond) == 1


def test_portal_pages_checks_the_slowest_page_own_work_under_25_ms():
    portal = load("portal_pages")
    rows = {
        "healthz": {"own_p95_ms": 0.0},
        "GET /appointments": {"own_p95_ms": 9.5},
        "GET /book/time": {"own_p95_ms": 24.9},
    }
    [verdict] = portal.verdicts(rows)
    assert (verdict.measured, verdict.met) == (24.9, True)
    rows["GET /book/day"] = {"own_p95_ms": 31.0}
    assert portal.verdicts(rows)[0].met is False
    assert portal.verdicts({"healthz": {"own_p95_ms": 0.0}})[0].met is None
