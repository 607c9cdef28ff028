#!/usr/bin/env bash
# The GPU check: one prepared command for a CUDA machine with no network that already has torch,
# torchvision, lightning, torchmetrics, tensorboard, matplotlib and rich, but not Hydra and the rest.
#
#   scripts/gpu_check.sh [OUT_DIR]        # from the project root; OUT_DIR defaults to gpu_check_out/
#
# 1. installs the project over the machine's own PyTorch from a local folder of wheels (.whl/, made
#    with `pip download` for that machine's Python; see README "On a GPU"), and shows that torch,
#    torchvision, lightning and torchmetrics were kept;
# 2. runs the GPU tests (pytest -m gpu);
# 3. experiment=mnist_fast_gpu and experiment=mnist_fast_short on 3 seeds each, as sweeps, with
#    their reports;
# 4. scripts/benchmark.py on the GPU: the MLP and experiment=mnist_fast (project / bare
#    LightningModule / plain loop);
# 5. while time is left: experiment=mnist_fast itself (the CPU recipe) on 3 seeds, and its benchmark
#    with compile=true;
# and writes OUT_DIR/summary.txt (also printed) and at most 6 other files beside it. The whole check
# keeps within BUDGET_S seconds (default 285, under 5 minutes): each step gets what is left, up to its
# own cap, and a step with under 20 s left is skipped and says so.
#
# The wheels, made here (with network) for a Python 3.12 machine that has torch, torchvision, lightning,
# torchmetrics, tensorboard, matplotlib, rich, numpy, scipy, PyYAML, tqdm and packaging:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
#     hydra-core==1.3.8 omegaconf==2.3.1 hydra-optuna-sweeper==1.3.0 optuna==2.10.1 \
#     hydra-submitit-launcher==1.2.0 submitit==1.5.4 sqlalchemy==1.4.54 alembic==1.13.3 cliff==4.17.0 \
#     cmaes==0.13.1 colorlog==6.12.0 Mako==1.4.3 greenlet==3.5.6 stevedore==5.10.0 cmd2==4.3.1 \
#     autopage==0.6.0 prettytable==3.18.0 pyperclip==1.11.0 wcwidth==0.9.4 prompt-toolkit==3.0.53 \
#     rich-argparse==1.8.0
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3     # an sdist: built here
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 DATA_DIR=${DATA_DIR:-$PWD/data}
PY=${PYTHON:-python3}
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
: > "$OUT/bench.txt"; rm -f "$OUT"/report_*.md  # nothing of an earlier check is reported as this one's
say() { echo "$*" | tee -a "$SUMMARY"; }
SECONDS=0
BUDGET=${BUDGET_S:-285}
budget() {  # cap: prints min(cap, seconds left), or fails where under 20 s are left
  local left=$((BUDGET - SECONDS))
  (( left >= 20 )) || return 1
  echo $(( $1 < left ? $1 : left ))
}

versions() { $PY -c "import torch, torchvision, lightning, torchmetrics; print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, lightning {lightning.__version__}, torchmetrics {torchmetrics.__version__}')"; }
say "== GPU check, $(date -u +%F\ %T) UTC"
say "device: $($PY -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")')"
say "before install: $(versions)"
# The project with its dependencies, resolved against what is installed, from .whl/ alone.
if $PY -m pip install --no-index --find-links .whl --no-build-isolation -e . > "$OUT/install.log" 2>&1; then
  say "install: pip install -e . from .whl/ resolved; $(grep -o 'Successfully installed.*' "$OUT/install.log" | cut -c1-400)"
else
  say "install: the resolve failed (tail of $OUT/install.log below); installing .whl/ and the project with --no-deps"
  tail -5 "$OUT/install.log" | tee -a "$SUMMARY"
  $PY -m pip install -q --no-index --no-deps .whl/*.whl >> "$OUT/install.log" 2>&1
  $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . >> "$OUT/install.log" 2>&1
fi
say "after install:  $(versions)"

say ""
say "== pytest -m gpu"
timeout -k 10 "$(budget 170 || echo 20)" $PY -m pytest -m gpu -q -rP -p no:cacheprovider --no-header -W ignore::DeprecationWarning tests/test_gpu.py \
  > "$OUT/pytest.log" 2>&1
say "$(tail -1 "$OUT/pytest.log") ($SECONDS s so far)"
grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -20 | tee -a "$SUMMARY"
grep -m1 "^non-deterministic resume:" "$OUT/pytest.log" | tee -a "$SUMMARY"

bench() {  # name, args...
  local name=$1 t; shift
  t=$(budget 120) || { say "$name: skipped, out of time ($SECONDS s)"; return; }
  local log=logs/gpu_check/bench_$name.txt
  mkdir -p logs/gpu_check
  timeout -k 10 "$t" $PY scripts/benchmark.py "$@" trainer.enable_progress_bar=false > "$log" 2>&1
  { echo "== bench $name: $*"; cat "$log"; } >> "$OUT/bench.txt"
  $PY - "$log" "$name ($*)" <<'EOF' | tee -a "$SUMMARY"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if not lines:
    sys.exit(print(f"{sys.argv[2]}: no result (see bench.txt)"))
r = json.loads(lines[-1][len("RESULT "):])
best, paired = r["best_s"], r["paired_ratios"]
print(f"{sys.argv[2]}: best s/epoch project {best['project']:.3f}, bare {best['bare']:.3f}, loop {best['loop']:.3f}")
for name in ("project/bare", "bare/loop"):
    print(f"    {name} {r['ratios'][name]:.3f} (best epochs), {paired[name]:.3f} (median of the alternated runs' ratios)")
EOF
}
sweep() {  # name, args...
  local name=$1 t; shift
  local dir=logs/gpu_check/$name
  t=$(budget 150) || { say "$name: skipped, out of time ($SECONDS s)"; return; }
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")"
  timeout -k 10 "$t" $PY -m src.train -m "$@" accelerator=gpu seed=0,1,2 trainer.enable_progress_bar=false \
    hydra.sweep.dir="$dir" > "$dir.log" 2>&1 || tail -4 "$dir.log" | tee -a "$SUMMARY"
  $PY -m src.report "$dir" > /dev/null 2>&1 && cp "$dir/report.md" "$OUT/report_$name.md"
  $PY - "$dir/report.csv" "$name" <<'EOF' | tee -a "$SUMMARY"
import csv, os, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]))) if os.path.exists(sys.argv[1]) else []
acc = [100 * float(r["test/acc"]) for r in rows if r.get("test/acc")]
train_s = [float(r["train_s"]) for r in rows if r.get("train_s")]
per_seed = ", ".join(f"seed {r.get('seed', '?')}: {100 * float(r['test/acc']):.2f}% in {float(r['train_s']):.2f} s"
                     for r in rows if r.get("test/acc") and r.get("train_s"))
print(f"{sys.argv[2]}: mean test acc {statistics.mean(acc):.2f}% over {len(acc)} seeds, mean training "
      f"{statistics.mean(train_s):.2f} s ({per_seed})" if acc and train_s else f"{sys.argv[2]}: no results")
EOF
}
say ""
say "== the GPU recipes on 3 seeds (train_s: the sum of time/train_epoch_s)"
sweep mnist_fast_gpu experiment=mnist_fast_gpu
sweep mnist_fast_short experiment=mnist_fast_short

say ""
say "== scripts/benchmark.py on the GPU (epochs after warm-up; 3 alternated runs each)"
bench mlp --epochs 3 --repeats 3 model=mlp accelerator=gpu
bench fast --epochs 3 --repeats 3 experiment=mnist_fast accelerator=gpu

say ""
say "== while time is left: the CPU recipe on the GPU, and compile=true"
sweep mnist_fast experiment=mnist_fast
bench fast_compiled --epochs 3 --repeats 1 experiment=mnist_fast accelerator=gpu compile=true

say ""
say "total: $SECONDS s"
