#!/usr/bin/env bash
# One device call of the H200 measurements in the README (issue 17). Usage on the GPU machine, from the
# repository root, with the wheels of ../shared/tools/gpu-wheels.sh (+ pytest, bigvgan) in .whl:
#   docs/bench/h200_session.sh check|train|extra
# check: GPU tests, kernel suite, infer suite; train: the train suite at 65536 and 262144; extra: compiled
# variants. Logs and tables go to $OUT; each phase prints its tables last.
set -uo pipefail
phase=${1:?check, train or extra}
out=${OUT:-bench-results}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  python3 -c 'import sys, torch, triton; print(sys.version.split()[0], torch.__version__, triton.__version__, torch.cuda.get_device_name())'
} 2>&1 | tee "$out/versions.txt"
run() {  # name timeout command...
  local name=$1 limit=$2; shift 2
  echo "== $name"; timeout "$limit" "$@" >"$out/$name.log" 2>&1; echo "rc=$? $name" | tee -a "$out/rcs.txt"
}
case $phase in
check)
  run gpu_tests 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_snake_kernel.py tests/test_anti_alias.py \
    tests/test_mel.py tests/test_bench.py tests/test_weight_norm.py tests/test_amp.py
  run kernels 200 python3 -m vocoder.bench kernels --out "$out/kernels"
  run infer 150 python3 -m vocoder.bench infer --frames 16384 --precisions tf32,bf16 --activations fused,eager,nvidia \
    --out "$out/infer"
  tail -3 "$out/gpu_tests.log"; cat "$out/kernels/kernels.md" "$out/infer/infer.md" 2>/dev/null ;;
train)
  run profile_aa 60 python3 docs/bench/profile_anti_alias.py
  run train_65536 330 python3 -m vocoder.bench train --steps generator,gan --segments 65536 --profile \
    --variants fused,eager,fused+ckpt,eager+ckpt,fused+dckpt,fused+ckpt+dckpt,fused+wn-each-use --out "$out/t65536"
  run train_262144 200 python3 -m vocoder.bench train --steps gan --segments 262144 \
    --variants fused,fused+ckpt,fused+dckpt,fused+ckpt+dckpt --out "$out/t262144"
  grep -E "^==|fwd\+bwd|triton|Self CUDA|^ *[a-z_]+.*%" "$out/profile_aa.log" | cut -c1-150 | head -50
  cat "$out/t65536/train.md" "$out/t262144/train.md" 2>/dev/null ;;
extra)
  run gpu_tests 150 python3 -m pytest -q -p no:cacheprovider tests/test_anti_alias.py tests/test_mel.py \
    tests/test_bench.py tests/test_weight_norm.py tests/test_amp.py
  run infer_cudnn 100 python3 -m vocoder.bench infer --frames 16384 --precisions tf32,bf16 --activations fused,nvidia \
    --cudnn-benchmark --out "$out/infer_cudnn"
  run train_cudnn 70 python3 -m vocoder.bench train --steps generator,gan --segments 65536 --variants fused --profile \
    --cudnn-benchmark --out "$out/train_cudnn"
  run train_compiled 200 python3 -m vocoder.bench train --steps generator --segments 65536 --profile \
    --variants fused+compile,fused+cudagraphs --out "$out/compiled"
  tail -3 "$out/gpu_tests.log"
  for f in infer_cudnn/infer train_cudnn/train compiled/train; do cat "$out/$f.md" 2>/dev/null; done ;;
esac
cat "$out/rcs.txt"
rm -f "$out/rcs.txt"; find "$out" -name "*.png" -o -name "*.csv" | xargs rm -f  # 8 files come back
