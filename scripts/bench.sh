#!/usr/bin/env bash
# `poactl cost` must answer in well under 50 ms, offline and without credentials.
# Uses hyperfine when installed (apt install hyperfine), else a plain timing loop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${POACTL:-target/release/poactl}
export MONGODB_ATLAS_ORG_ID=0123456789abcdef01234567 POAFIX_DB_PASSWORD=bench-password-1 POAFIX_MIGRATIONS_PASSWORD=bench-password-2 POAFIX_ORIGIN_SECRET=bench-origin-secret-3
unset AWS_PROFILE MONGODB_ATLAS_CLIENT_ID MONGODB_ATLAS_CLIENT_SECRET
for env in prod; do
    if command -v hyperfine >/dev/null; then
        hyperfine --warmup 5 --runs 100 -N "$BIN cost -e $env --scenario all --budget 1000000 -o json"
    else
        runs=100
        start=$(date +%s%N)
        for _ in $(seq $runs); do "$BIN" cost -e "$env" --scenario all --budget 1000000 -o json >/dev/null; done
        end=$(date +%s%N)
        echo "poactl cost -e $env --scenario all: $(( (end - start) / runs / 1000 )) µs per run (mean of $runs)"
    fi
done
