# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DISTORTION_DATA ?= $(abspath ../shared/data)
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
# torch 2.14.1 / torchvision 0.29.1 are the releases this project is tested with.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
QUIET := --trainer.enable_progress_bar false

.PHONY: venv venv-test demo test test-slow bench seed-grid sweep lint clean align lfw-baseline

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e .
	touch $@

# what only the tests need (pytest, ruff, Playwright, psycopg) stays out of the demo's environment
$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed
venv-test: $(BIN)/.installed-test

# The demo (docs/demo.md): F, the paper's G and the carrier on MNIST, carriers of LFW faces refined from noise;
# runs/demo/summary.png and summary.json; fails with the reason if a G collapsed.
demo: venv
	$(BIN)/distortion demo

test: venv-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow"

test-slow: venv-test
	$(BIN)/pytest -q -m slow

bench: venv
	$(BIN)/python -m distortion.bench

# Seed robustness of the demo's recipe: F seeds {0, 1} x G seeds {0..4} at the demo budget (docs/stability.md).
seed-grid: venv
	$(BIN)/distortion fit --config configs/mnist_embedding_mlp.yaml $(QUIET)
	$(BIN)/distortion fit --config configs/mnist_embedding_mlp.yaml --seed_everything 1 --name mnist_embedding_mlp_seed1 $(QUIET)
	$(BIN)/distortion fit --config configs/mnist_reader.yaml --trainer.max_epochs 2 $(QUIET)
	$(BIN)/distortion sweep --config configs/mnist_generator.yaml --out runs/seed_grid \
		--grid '{"model.init_args.embedding_ckpt": ["runs/mnist_embedding_mlp/checkpoints/best.ckpt", "runs/mnist_embedding_mlp_seed1/checkpoints/best.ckpt"], "seed_everything": [0, 1, 2, 3, 4]}' \
		-- --trainer.max_epochs 1 --data.init_args.limit_train 25000 $(QUIET)

sweep: venv
	$(BIN)/distortion sweep --config configs/mnist_generator.yaml --alphas [0.5,1,2] --betas [10] -- \
		--trainer.max_epochs 1 --data.init_args.limit_train 10000 $(QUIET)

# Faces: align LFW once into cache/lfw_dlib, then score dlib's ResNet (our port and dlib itself) on LFW.
align: venv
	$(BIN)/distortion align --backbone dlib

lfw-baseline: align
	$(BIN)/distortion evaluate-backbone --backbone dlib --reference true

lint: venv-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf runs wandb lightning_logs
