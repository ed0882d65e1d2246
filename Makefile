# The two set-up commands of the README: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
ARGS ?=

.PHONY: run test lint bench smoke weights

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[test,ocr]"
	touch $(STAMP)

# On a fresh clone (no games under data.root, no weights) this runs the demo
# (hoopray/testing/demo.py).
run: $(STAMP)
	$(PY) jobs/process_games.py $(ARGS)

smoke: $(STAMP)
	$(PY) jobs/process_games.py +experiment=smoke $(ARGS)

# Download the weights the composed config names (needs network): Hugging Face models into
# the HF cache, Roboflow models with ROBOFLOW_API_KEY from the environment, EasyOCR's
# recogniser. Give it the overrides you give `make run`: make weights ARGS=models/reader=easyocr
weights: $(STAMP)
	$(PY) jobs/weights.py $(ARGS)

# pytest's exit code 5 means no test was collected: that is a failure too.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
