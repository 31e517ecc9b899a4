# Source on the accelerator machine, from the repository root: installs the wheels carried in
# .whl/ (Keras and the notebook stack; the image has JAX, NumPy, SciPy, scikit-learn, pandas),
# points at the data carried in .fmnist_data/, and selects Keras's JAX backend.
# Prepare here first: README, "On an accelerator".
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD JUPYTER_PATH=/tmp/site/share/jupyter KERAS_BACKEND=jax
export FMNIST_DATA_DIR=$PWD/.fmnist_data PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
