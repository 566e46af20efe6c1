#!/usr/bin/env bash
# Pretrain the tiny demo generator on the demo corpus and write vocoder/data/demo_pretrained.pt, the
# starting point of `python -m vocoder.train +experiment=demo` (see README.md here). CPU; the shipped
# file took about 105 min with OMP_NUM_THREADS=2 on a 2-core machine. Any arguments go to vocoder.train,
# e.g.  run_dir=/tmp/pretrain
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
run_dir=runs/demo_pretrain
for arg in "$@"; do
    [[ "$arg" == run_dir=* ]] && run_dir="${arg#run_dir=}"
done

# one thread unless OMP_NUM_THREADS says otherwise: a rerun with the same machine, library versions and thread
# count gives the same file
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python -m vocoder.train +experiment=demo_pretrain "$@"
last="$(ls "$run_dir"/checkpoints/step_*.pt | sort | tail -n 1)"
python recipes/demo/export_generator.py --half "$last" vocoder/data/demo_pretrained.pt
