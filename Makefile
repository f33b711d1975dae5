PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

BACKENDS := $(VENV)/.backends

.PHONY: demo test lint format bench clean

$(BIN)/activate: requirements.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(BIN)/activate

# JAX and PyTorch, for the tests that run the models on every Keras backend
$(BACKENDS): $(BIN)/activate requirements-jax.txt requirements-torch.txt
	$(BIN)/pip install -q -r requirements-jax.txt -r requirements-torch.txt
	touch $(BACKENDS)

demo: $(BIN)/activate
	$(BIN)/python -m apps.demo --out runs/demo

test: $(BIN)/activate $(BACKENDS)
	$(BIN)/python -m pytest -q
	# the tests marked `backends` on JAX and on PyTorch, side by side (two cores)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -m backends & jax=$$!; \
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m backends; torch=$$?; \
	wait $$jax && exit $$torch

lint: $(BIN)/activate
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(BIN)/activate
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(BIN)/activate
	$(BIN)/python -m apps.benchmark --json runs/benchmark.json

clean:
	rm -rf $(VENV) runs
