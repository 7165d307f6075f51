#!/bin/bash
# Compares the training methods on one shortened schedule (the same for all) and, for three subnets, the
# accuracy inherited from the sandwich supernet with the same architecture trained alone for the same steps.
# Usage: scripts/compare-methods.sh BIN_DIR OUT_DIR [EPOCHS STEPS_PER_EPOCH]
# Writes OUT_DIR/results.jsonl (one line per trained file and evaluated arch) and OUT_DIR/*.log.
set -euo pipefail
bin=$1 out=$2 epochs=${3:-4} steps=${4:-100}
mkdir -p "$out"
: >"$out/results.jsonl"
mid='{"r":24,"d":[3,3,3],"k":[5,5,5,0,5,5,5,0,5,5,5,0],"e":[4,4,4,0,4,4,4,0,4,4,4,0]}'
largest='{"r":28,"d":[4,4,4],"k":[7,7,7,7,7,7,7,7,7,7,7,7],"e":[6,6,6,6,6,6,6,6,6,6,6,6]}'
smallest='{"r":20,"d":[2,2,2],"k":[3,3,0,0,3,3,0,0,3,3,0,0],"e":[3,3,0,0,3,3,0,0,3,3,0,0]}'
schedule=(--epochs "$epochs" --steps-per-epoch "$steps" --seed 0 --predictor-samples 0 --epoch-validation 500)

evaluate() { # FILE LABEL ROLE ARCH
    local result
    result=$("$bin/supernet" eval --model "$1" --arch "$4" --json)
    echo "{\"run\":\"$2\",\"subnet\":\"$3\",\"result\":$result}" >>"$out/results.jsonl"
}

for method in progressive sandwich attentive uniform; do
    start=$(date +%s)
    "$bin/supernet" train --method "$method" "${schedule[@]}" --out "$out/$method.supernet" >"$out/$method.log" 2>&1
    echo "{\"run\":\"$method\",\"train_seconds\":$(( $(date +%s) - start ))}" >>"$out/results.jsonl"
    evaluate "$out/$method.supernet" "$method" largest "$largest"
    evaluate "$out/$method.supernet" "$method" mid "$mid"
    evaluate "$out/$method.supernet" "$method" smallest "$smallest"
done
for role in largest mid smallest; do
    arch=${!role}
    start=$(date +%s)
    "$bin/supernet" train --method standalone --arch "$arch" "${schedule[@]}" --out "$out/alone-$role.supernet" \
        >"$out/alone-$role.log" 2>&1
    echo "{\"run\":\"alone-$role\",\"train_seconds\":$(( $(date +%s) - start ))}" >>"$out/results.jsonl"
    evaluate "$out/alone-$role.supernet" "alone" "$role" "$arch"
done
echo "results in $out/results.jsonl"
