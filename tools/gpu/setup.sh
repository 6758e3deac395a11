# Sourced at the start of every command on the GPU machine (tools/gpu/README.md): the wheels, MNIST
# and the packed checkpoints in place, W&B off (it is not installed there).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD DISTORTION_DATA=/tmp/data WANDB_MODE=disabled PYTHONUNBUFFERED=1
mkdir -p /tmp/data/MNIST/raw
for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "/tmp/data/MNIST/raw/$(basename "$f" .gz)"; done
cp -r .gpu/runs . 2>/dev/null || true
CSV='[{"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}}]'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
