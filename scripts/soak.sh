#!/usr/bin/env bash
# The longer soak of the reliability suite (issue 6), beyond what `npm test` runs: rounds of 20 kill -9 crash
# trials, each round from new seeds, with the network and disk faults, until the time is up; then the load test and
# a longer fuzzing of the API.
# Every round prints its seeds, so a failure can be run again alone:
#   RELIABILITY_TRIALS=1 RELIABILITY_SEED=<seed> node --import tsx --test test/reliability/crash.test.ts
# Usage: scripts/soak.sh [minutes, default 30]   (SOAK_SEED=N starts from a given seed)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
[[ $minutes =~ ^[0-9]+$ ]] || { echo "usage: scripts/soak.sh [minutes]" >&2; exit 2; }
npm run build >/dev/null
seed=${SOAK_SEED:-$(($(date +%s) % 1000000))}
end=$(($(date +%s) + minutes * 60))
rounds=0
trials=0
while [ "$(date +%s)" -lt "$end" ]; do
  rounds=$((rounds + 1))
  echo "== soak round $rounds: crash trials from seed $seed, network and disk faults"
  RELIABILITY_TRIALS=20 RELIABILITY_SEED=$seed node --import tsx --test --test-concurrency=1 \
    test/reliability/crash.test.ts test/reliability/network.test.ts test/reliability/disk.test.ts
  trials=$((trials + 20))
  seed=$((seed + 20))
done
echo "== load, and the API fuzzed for 5 minutes per sidecar"
node --import tsx --test test/reliability/load.test.ts
RELIABILITY_FUZZ_SECONDS=300 node --import tsx --test test/reliability/fuzz.test.ts
echo "soak: $rounds rounds, $trials crash trials, nothing lost"
