PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test lint format bench clean

$(BIN)/activate: requirements.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(BIN)/activate

demo: $(BIN)/activate
	$(BIN)/python -m apps.demo --out runs/demo

test: $(BIN)/activate
	$(BIN)/python -m pytest -q

lint: $(BIN)/activate
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(BIN)/activate
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(BIN)/activate
	$(BIN)/python -m apps.benchmark --json runs/benchmark.json

clean:
	rm -rf $(VENV) runs
