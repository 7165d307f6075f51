#!/bin/bash
# The main job on the shipped default model: start supernetd on a temporary socket with the bundled plugins,
# ask for subnets at three budgets with supernetctl, show what came back, stop the daemon.
set -euo pipefail
bin=${1:?usage: demo.sh RELEASE_BIN_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT

mkdir -p "$work/plugins" "$work/models" "$work/state"
install -m 644 "$bin"/libtarget-*.so "$bin"/libstrategy-*.so "$work/plugins/"
model=$(ls "$root"/models/*.supernet 2>/dev/null | head -1 || true)
if [ -z "$model" ]; then
    echo "no shipped model in models/: using a randomly initialized supernet (accuracies are meaningless)"
    "$bin/supernet" init --space fmnist-mbv3 --out "$work/models/fmnist-mbv3.supernet"
else
    ln -s "$model" "$work/models/"
fi

"$bin/supernetd" --socket "$work/client.sock" --admin-socket "$work/admin.sock" --models "$work/models" \
    --plugins "$work/plugins" --state-dir "$work/state" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$work/client.sock" ] && break; sleep 0.1; done
ctl() { "$bin/supernetctl" --socket "$work/client.sock" --admin-socket "$work/admin.sock" "$@"; }

echo "== supernetd is up: models, targets, strategies"
ctl models
ctl targets
ctl strategies
name=$(ctl models --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
for budget in "--macs 4000000" "--macs 10000000" "--latency-ms 0.6"; do
    echo
    echo "== specialize $name for target analytic under $budget"
    # shellcheck disable=SC2086
    ctl specialize --model "$name" --target analytic $budget --dtype f16 --out "$work/subnet.safetensors"
done
echo
echo "== accuracy vs latency front"
ctl pareto --model "$name" --target analytic --points 6
echo
ctl stats | head -12
