# Source on the accelerator machine, from the repository root: installs the wheels carried in
# .whl/ (Keras and the notebook stack; the image has JAX, NumPy, SciPy, scikit-learn, pandas),
# points at the data carried in .fmnist_data/, and selects Keras's JAX backend.
# Prepare here first: README, "On an accelerator".
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD JUPYTER_PATH=/tmp/site/share/jupyter KERAS_BACKEND=jax
export FMNIST_DATA_DIR=$PWD/.fmnist_data PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# XLA's autotuning, chosen in issue 21 (benchmarks/results/accelerator/issue21/): level 0
# never finished an epoch; level 2 without Triton GEMMs compiled fastest of those measured,
# within the run-to-run spread. Kept if the caller set XLA_FLAGS.
export XLA_FLAGS="${XLA_FLAGS---xla_gpu_autotune_level=2 --xla_gpu_enable_triton_gemm=false}"
# umap-learn and pynndescent compile their numba functions on first import and cache them;
# a fresh install has no cache: `import umap` took 25 s there (2 s here, cached) and the
# first embedding 9 s more (issue 21, cpu_steps.py). One cache for every process, filled in
# the background while the pipeline starts.
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/numba_cache}
(python3 -c "import sys; sys.modules['tensorflow'] = None; import umap" >/dev/null 2>&1 &)
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
