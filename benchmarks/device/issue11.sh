#!/usr/bin/env bash
# The issue-11 accelerator runs, several at once on separate GPUs of one machine (each job
# sees only its own GPUs through CUDA_VISIBLE_DEVICES). Usage, on a 4-GPU machine:
#   bash benchmarks/device/issue11.sh a    # recipes and throughput on one GPU each, smoke run
#   bash benchmarks/device/issue11.sh b    # recipe variants, then the best on 4 and 2 GPUs
#   bash benchmarks/device/issue11.sh c    # the gpu profile run, 2- and 4-GPU DataParallel
#   bash benchmarks/device/issue11.sh d    # the same on a 2-GPU machine, without 4 GPUs
#   bash benchmarks/device/issue11.sh e    # the gpu profile run alone on one GPU (the
#                                          # accelerator reference run: deck and notes)
#   bash benchmarks/device/issue11.sh f    # the recipe on one GPU, then on two, nothing
#                                          # else running (2-GPU machine)
#   bash benchmarks/device/issue11.sh g    # the 95.5% goal: longer runs with an EMA of the
#                                          # weights, one per GPU (2-GPU machine)
#   bash benchmarks/device/issue11.sh h    # the longest EMA recipe under 10 minutes, two
#                                          # seeds, one per GPU (2-GPU machine)
#   bash benchmarks/device/issue11.sh i    # weak scaling: throughput at 512 images per GPU
#                                          # on one GPU, then two (2-GPU machine)
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
pack() { tar czf "$OUT/$stage.tgz" --exclude="*.keras" --exclude="tensorboard" -C /tmp r; }
case $stage in
a)
    bench 0 s28e30_h100 recipe --epochs 30 &
    bench 1 s28e25_h100 recipe --epochs 25 &
    bench 2 s28e100_h100 recipe --epochs 100 &
    (bench 3 small28_h100 throughput; pipeline 3 smoke) &
    ;;
b)
    # Recipes on one GPU each; the best on validation then trains on 4 and on 2 GPUs.
    bench 0 lr01_e30 recipe --epochs 30 --learning-rate 0.1 &
    bench 1 zg_e30 recipe --epochs 30 --zero-init-residual &
    bench 2 lr01zg_e30 recipe --epochs 30 --learning-rate 0.1 --zero-init-residual &
    XLA_FLAGS=--xla_gpu_autotune_level=0 bench 3 lr01_e30_noautotune recipe --epochs 30 \
        --learning-rate 0.1 &
    wait
    pack
    best=$(python3 -c "import json,glob; r=[json.load(open(f)) for f in glob.glob('/tmp/r/recipe_*_e30.json')]; b=max(r,key=lambda d:d['val_accuracy_tta']); print(b['name'])")
    echo "== best on validation: $best"
    case $best in
    lr01_e30) args="--learning-rate 0.1" ;;
    zg_e30) args="--zero-init-residual" ;;
    lr01zg_e30) args="--learning-rate 0.1 --zero-init-residual" ;;
    esac
    bench 0,1,2,3 "${best}_4gpu" recipe --epochs 30 $args
    pack
    bench 0,1 "${best}_2gpu" recipe --epochs 30 $args
    pack
    timeout 100 bash -c "$(declare -f bench); bench 0,1,2,3 weak_4gpu throughput --cases real --batch-size 2048 --steps 20"
    ;;
c)
    # Pack what has finished every 30 s, so that a call cut short still returns it.
    (while sleep 30; do pack; done) &
    packer=$!
    pipeline 0 gpu &
    timeout 240 bash -c "$(declare -f bench); bench 1,2 lr01_e30_2gpu recipe --epochs 30 \
        --learning-rate 0.1" &
    timeout 240 bash -c "$(declare -f bench); bench 3 lr01zg_e30 recipe --epochs 30 \
        --learning-rate 0.1 --zero-init-residual" &
    wait %2 %3 %4
    timeout 200 bash -c "$(declare -f bench); bench 0,1,2,3 lr01_e30_4gpu recipe --epochs 30 \
        --learning-rate 0.1"
    kill $packer
    ;;
d)
    # On 2 GPUs, at once: the gpu profile run on GPU 0 and DataParallel over both GPUs,
    # each process held to 45% of a GPU's memory. The 2-GPU run overlaps the pipeline's
    # EDA, preprocessing and MLP (light GPU use); its timing says so.
    export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45
    (while sleep 20; do pack; done) &
    packer=$!
    pipeline 0 gpu &
    timeout 200 bash -c "$(declare -f bench); bench 0,1 lr01_e30_2gpu recipe --epochs 30 \
        --learning-rate 0.1" &
    wait %2 %3
    kill $packer
    ;;
f)
    bench 0 lr01_e30_1gpu_alone recipe --epochs 30 --learning-rate 0.1
    pack
    bench 0,1 lr01_e30_2gpu_alone recipe --epochs 30 --learning-rate 0.1
    ;;
g)
    (while sleep 20; do pack; done) &
    packer=$!
    (bench 0 lr01_e120_ema recipe --epochs 120 --learning-rate 0.1 --ema 0.999
     bench 0 lr01_e30_ema recipe --epochs 30 --learning-rate 0.1 --ema 0.99) &
    bench 1 lr01_e200_ema recipe --epochs 200 --learning-rate 0.1 --ema 0.999 &
    wait %2 %3
    kill $packer
    ;;
h)
    (while sleep 20; do pack; done) &
    packer=$!
    bench 0 lr01_e230_ema recipe --epochs 230 --learning-rate 0.1 --ema 0.999 &
    bench 1 lr01_e230_ema_seed7 recipe --epochs 230 --learning-rate 0.1 --ema 0.999 --seed 7 &
    wait %2 %3
    kill $packer
    ;;
i)
    bench 0 real_b512_1gpu throughput --cases real --batch-size 512 --steps 40
    bench 0,1 real_b1024_2gpu throughput --cases real --batch-size 1024 --steps 20
    bench 0 real_b1024_1gpu throughput --cases real --batch-size 1024 --steps 20
    ;;
e)
    (while sleep 20; do pack; done) &
    packer=$!
    pipeline 0 gpu
    kill $packer
    ;;
esac
wait
pack
ls -la "$OUT"
