#!/usr/bin/env bash
# Accuracy benchmarks on a GPU machine: trains several networks in parallel on one GPU with
# `python -m lowbit_hdl train`, each stopping cleanly before a time limit (checkpoint kept;
# the same command again resumes), and packs logs, summaries, exported networks and
# checkpoints into OUT_DIR as <=15 MB pieces (runs.tgz.aa, .ab, ...).
#
#   bash bench/train_gpu.sh DATA_DIR RUNS_DIR OUT_DIR TIME_LIMIT_S JOB [JOB ...]
#
# DATA_DIR holds MNIST/raw/*.gz and either cifar-10-batches-py/ or the JPEG copy
# cifar10_jpeg.npz + cifar10_jpeg.py (converted to pickles under RUNS_DIR/data on first use).
# Environment: PYTHON (default python3), DEVICE (default cuda; cpu for a dry run).
# JOB is NAME:NETWORK:EPOCHS[:extra train arguments separated by commas], e.g.
#   cnv_w1a1:networks/cnv_w1a1.py:80:--lr,0.01
# The golden-model check of each exported network is left for afterwards, on any CPU machine:
# `python bench/train_accuracy.py check RUNS/NAME.npz --data DIR --summary RUNS/NAME.json`.
set -u
data=$1 runs=$2 out=$3 limit=$4
shift 4
mkdir -p "$runs" "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
cifar=$data
if [ ! -d "$data/cifar-10-batches-py" ] && [ -f "$data/cifar10_jpeg.py" ]; then
    cifar=$runs/data
    if [ ! -d "$cifar/cifar-10-batches-py" ]; then
        t0=$(date +%s)
        $py "$data/cifar10_jpeg.py" "$cifar" >"$runs/cifar_convert.log" 2>&1 || {
            cat "$runs/cifar_convert.log"; exit 1; }
        echo "CIFAR-10 pickles written to $cifar in $(( $(date +%s) - t0 )) s"
    fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$py -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'
pids=()
for job in "$@"; do
    IFS=: read -r name net epochs extra <<<"$job"
    case $net in *cnv*) d=$cifar ;; *) d=$data ;; esac
    args=()
    [ -n "$extra" ] && IFS=, read -r -a args <<<"$extra"
    echo "start $name: $net, $epochs epochs ${args[*]}"
    $py -m lowbit_hdl train "$net" --data "$d" --epochs "$epochs" --device "${DEVICE:-cuda}" \
        --out "$runs/$name.npz" --summary "$runs/$name.json" --resume --skip-golden \
        --time-limit "$limit" "${args[@]}" >>"$runs/$name.log" 2>&1 &
    pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; r=$?
    job=${*:$((i + 1)):1}
    echo "job ${job%%:*}: exit $r; $(tail -n 3 "$runs/${job%%:*}.log" | tr '\n' ' ')"
    [ $r -ne 0 ] && [ $r -ne 3 ] && rc=1
done
# everything but checkpoints; then the checkpoints of unfinished jobs, in job order, while
# the pack stays under 60 MB (what comes back from the GPU machine: 64 MB at most). The rest
# stay in RUNS_DIR, which survives only while the machine is held.
tar cf "$out/runs.tar" -C "$runs" --exclude=./data --exclude='*.ckpt.pt' .
budget=$(( 60000000 - $(stat -c %s "$out/runs.tar") ))
for job in "$@"; do
    name=${job%%:*}
    ck=$runs/$name.ckpt.pt
    [ -f "$runs/$name.npz" ] || [ ! -f "$ck" ] && continue
    size=$(stat -c %s "$ck")
    if [ "$size" -lt "$budget" ]; then
        tar rf "$out/runs.tar" -C "$runs" "./$name.ckpt.pt"
        budget=$(( budget - size - 1024 ))
    else
        echo "checkpoint of $name left out of the pack (no room): it stays in $ck"
    fi
done
gzip -1 "$out/runs.tar" && mv "$out/runs.tar.gz" "$out/runs.tgz"
split -b 15M "$out/runs.tgz" "$out/runs.tgz." && rm "$out/runs.tgz"
ls -la "$out"
exit $rc
