#!/usr/bin/env bash
# The issue-11 accelerator runs, several at once on separate GPUs of one machine (each job
# sees only its own GPUs through CUDA_VISIBLE_DEVICES). Usage, on a 4-GPU machine:
#   bash benchmarks/device/issue11.sh a    # recipes and throughput on one GPU each, smoke run
#   bash benchmarks/device/issue11.sh b    # 2- and 4-GPU DataParallel, the gpu profile run
# Results go to /tmp/r (JSON and logs), packed into $OUT/<stage>.tgz.
set -u
stage=$1
source benchmarks/device/env.sh || exit 1
mkdir -p /tmp/r
bench() {  # GPUS NAME ARGS...: one bench_accelerator.py run, logged
    local gpus=$1 name=$2; shift 2
    CUDA_VISIBLE_DEVICES=$gpus python3 benchmarks/bench_accelerator.py "$@" --name "$name" \
        --out /tmp/r > "/tmp/r/$name.log" 2>&1
    echo "== $name (GPUs $gpus) exit $?: $(grep -E '"(train_wall_seconds_incl_compile|val_accuracy_tta|test_accuracy_tta|augmented_over_synthetic)"' /tmp/r/*"$name".json | tr -d '\n ')"
}
pipeline() {  # GPUS PROFILE ARGS...: the papermill pipeline, logged
    local gpus=$1 profile=$2; shift 2
    CUDA_VISIBLE_DEVICES=$gpus FMNIST_RUNS_DIR=/tmp/r/runs python3 -m fmnist_lib run \
        --profile "$profile" "$@" > "/tmp/r/pipeline_$profile.log" 2>&1
    echo "== pipeline $profile (GPUs $gpus) exit $?"; tail -3 "/tmp/r/pipeline_$profile.log"
}
case $stage in
a)
    bench 0 s28e30_h100 recipe --epochs 30 &
    bench 1 s28e25_h100 recipe --epochs 25 &
    bench 2 s28e100_h100 recipe --epochs 100 &
    (bench 3 small28_h100 throughput; pipeline 3 smoke) &
    ;;
b)
    (bench 0,1,2,3 "${RECIPE_NAME}_4gpu" recipe $RECIPE
     bench 0,1 "${RECIPE_NAME}_2gpu" recipe $RECIPE) &
    ;;
esac
wait
tar czf "$OUT/$stage.tgz" --exclude="*.keras" --exclude="tensorboard" -C /tmp r
ls -la "$OUT"
