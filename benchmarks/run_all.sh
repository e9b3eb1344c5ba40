#!/usr/bin/env bash
# Runs the slot-search, booking and lock-ceiling runs recorded in RESULTS.md (not the
# access-log, HL7 and auth-overhead scripts, nor the runs at older commits kept in
# results/head, early-*, pre-*); output goes to benchmarks/results/.
# Takes about 15 minutes on an idle machine. The machine's PostgreSQL runs need it on
# 127.0.0.1:5432 (trust auth); pass --embedded-only to skip them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
# Other work on the machine skews everything: wait up to this long for it to go idle
# before each level (the results say how busy it was).
quiet_wait=${QUIET_WAIT:-60}
run() {
    local name=$1
    shift
    # Resume: a run whose JSON exists is skipped (FORCE=1 runs everything again).
    if [[ -s "$out/$name.json" && -z "${FORCE:-}" ]]; then
        echo "== $name: already in $out, skipped"
        return
    fi
    echo "== $name: python $*" | tee "$out/$name.md"
    # --no-check: these runs record numbers (a missed target is in the output), and one
    # missed target must not stop the others.
    python "$@" --quiet-wait "$quiet_wait" --no-check --json "$out/$name.json" | tee -a "$out/$name.md"
}

run slot-mix-embedded benchmarks/slot_search.py --concurrency 1,10,50
run slot-mix-embedded-pool4 benchmarks/slot_search.py --concurrency 1,50 --db-pool-size 4
run slot-ct-embedded benchmarks/slot_search.py --scenario ct-head@riverside --concurrency 1,50
run slot-healthz-embedded benchmarks/slot_search.py --scenario healthz --concurrency 1,50
run slot-mix-think1-embedded benchmarks/slot_search.py --think 1 --concurrency 50
run slot-mix-think3-embedded benchmarks/slot_search.py --think 3 --concurrency 50
run slot-mix-warning-log-embedded benchmarks/slot_search.py --concurrency 1,50 \
    --server-log-level WARNING

run booking-embedded benchmarks/booking.py
run booking-embedded-pool4 benchmarks/booking.py --concurrency 1,5,20,40 --db-pool-size 4
run booking-by-calendar-embedded-pool4 benchmarks/booking.py --concurrency 20 \
    --partition by-calendar --db-pool-size 4
run booking-interleaved-embedded-pool4 benchmarks/booking.py --concurrency 20 \
    --partition interleaved --db-pool-size 4
run booking-think1-embedded benchmarks/booking.py --concurrency 20 --think 1

run lock-ceiling-embedded benchmarks/lock_ceiling.py

# Several API processes (imaging-bridge serve --workers N; pool size 4 keeps the
# connection count under max_connections).
run slot-mix-workers2-embedded-pool4 benchmarks/slot_search.py --concurrency 1,50 \
    --server-workers 2 --db-pool-size 4
run booking-workers2-embedded-pool4 benchmarks/booking.py --concurrency 20,40 \
    --server-workers 2 --db-pool-size 4

if [[ "${1:-}" != "--embedded-only" ]]; then
    # DB_POOL_SIZE 4: at the default of 10 the server alone opens ~100 connections,
    # the whole max_connections of a default PostgreSQL, which others share here.
    run slot-mix-machine-pool4 benchmarks/slot_search.py --concurrency 1,10,50 \
        --pg machine --db-pool-size 4
    run booking-machine-pool4 benchmarks/booking.py --concurrency 1,5,20,40 \
        --pg machine --db-pool-size 4
    run lock-ceiling-machine benchmarks/lock_ceiling.py --pg machine
fi
