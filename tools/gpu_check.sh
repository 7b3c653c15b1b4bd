#!/usr/bin/env bash
# The GPU checks in two short parts, for a CUDA machine where torch sees the GPU (the `device`
# tool of this workplace, or a user's GPU box). Each step has its own time limit; a failing
# step is reported and the next one runs. Everything printed also goes to OUTDIR/gpu_check_PART.log.
#
#   tools/gpu_check.sh tests OUTDIR   # the CUDA tests and the offline suites with training on the GPU
#   tools/gpu_check.sh paper OUTDIR   # model timings; the paper model trained on the GPU (3 subjects, both variants)
#   tools/gpu_check.sh live OUTDIR    # live-engine latency on CUDA (default and paper models)
#
# Python: $PYTHON (default python3). Where the machine lacks the project's pure-Python
# dependencies (pylsl, mne, mne-lsl, nibabel, nilearn, eeglabio, pyxdf, ...), put their wheels
# in .whl/ (see README, "On a GPU"): they are installed to /tmp/site and put on PYTHONPATH.
set -u
part=${1:?"part: tests | paper | live"}
out=${2:?"OUTDIR"}
mkdir -p "$out"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
log="$out/gpu_check_$part.log"
exec > >(tee -a "$log") 2>&1
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    if [ ! -f /tmp/site/.done ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl && touch /tmp/site/.done
    fi
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

# the console scripts (beira-train, beira-rt) that some tests run: an editable install, no downloads
bindir=$(dirname "$(command -v "$PY")")
if [ ! -x "$bindir/beira-train" ]; then
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . || echo "editable install failed"
fi

step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@"
    echo "=== $name: rc $? in $((SECONDS - t0)) s"
}

case "$part" in
tests)
    step env 30 bash -c "nvidia-smi -L; $PY -c 'import torch, pylsl, mne, mne_lsl, nibabel; \
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0)); \
print(\"liblsl\", pylsl.library_version(), \"mne\", mne.__version__, \"mne-lsl\", mne_lsl.__version__)'"
    # the CUDA-marked tests (the other engine tests run the engine on the CPU)
    step pytest_cuda 90 "$PY" -m pytest -p no:cacheprovider -q -ra -m cuda \
        tests/engine/test_device_window.py tests/engine/test_engine.py tests/offline/test_train_loop.py
    # the offline, model and inference suites: their training and evaluation use
    # training.device auto, which is CUDA here
    xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")  # parallel where pytest-xdist is there
    step pytest_offline 150 "$PY" -m pytest -p no:cacheprovider -q -ra $xdist \
        tests/offline tests/models tests/test_inference.py tests/test_bundle.py
    ;;
paper)
    # step times with the trainer's strict numerics, then with torch's defaults (TF32)
    step bench_model 60 "$PY" tools/bench_model.py --device cuda --precisions fp32,bf16 --repeats 30 --train-repeats 10
    step bench_model_tf32 60 "$PY" tools/bench_model.py --device cuda --precisions fp32 --repeats 30 \
        --train-repeats 10 --torch-numerics
    # the paper's model trained on the GPU (2-min budget per run; patience stops it in well under
    # a minute on an H200): 3 synthetic subjects, both variants, the matrix of issue 14
    step paper_on_gpu 420 "$PY" tools/accuracy_matrix.py --config configs/paper.yaml \
        --set training.max_minutes=2 --data-root /tmp/gpu_subjects --data-seeds 0 1 2 --train-seeds 0 \
        --variants reference causal --out /tmp/gpu_runs
    ;;
live)
    step env 30 bash -c "nvidia-smi --query-gpu=name,clocks.sm,utilization.gpu --format=csv"
    step latency_default 150 "$PY" tools/bench_latency.py --device cuda --seconds 12 --inference compare
    step latency_paper 150 "$PY" tools/bench_latency.py --device cuda --seconds 12 --config configs/paper.yaml \
        --inference compare
    step compute_only_default 60 "$PY" tools/bench_latency.py --device cuda --compute-only 300
    step compute_only_paper 60 "$PY" tools/bench_latency.py --device cuda --compute-only 300 --config configs/paper.yaml
    step compute_only_paper_causal 60 "$PY" tools/bench_latency.py --device cuda --compute-only 300 \
        --config configs/paper.yaml --variant causal
    ;;
*)
    echo "unknown part: $part (tests | paper | live)"
    exit 2
    ;;
esac
