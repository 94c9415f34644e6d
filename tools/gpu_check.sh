#!/usr/bin/env bash
# The checks run on a lent GPU (the `device` tool): CUDA tests of the training speed options, then the
# training-step benchmark (fp32 eager, plain Adam vs bf16 + channels_last + compile, fused Adam) at the
# issue's sizes. Results land in $OUT (default ./gpu-out). Wheels of packages the GPU image lacks may be
# carried in .whl/.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
bench() {  # name, timeout, benchmark args...
    local name=$1 limit=$2; shift 2
    echo "== $name"
    timeout "$limit" python3 tools/benchmark.py --device cuda --fast --repeats 20 --warmup 2 --out "$OUT/$name.json" "$@" 2>&1 | tee "$OUT/$name.log"
}
ONLY=${ONLY:-cyclegan pix2pix stargan tests}
[[ $ONLY == *cyclegan* ]] && bench cyclegan128 170 --methods cyclegan --sizes 128 --batch-sizes 1
[[ $ONLY == *pix2pix* ]] && bench pix2pix256 120 --methods pix2pix --sizes 256 --batch-sizes 1 4
[[ $ONLY == *stargan* ]] && bench stargan128 150 --methods stargan --sizes 128 --batch-sizes 16
[[ $ONLY == *tests* ]] || exit 0
echo "== tests"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_fast_training.py 2>&1 | tee "$OUT/pytest.log"
