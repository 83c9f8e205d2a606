# Two entry points (see README): `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast flops clean

# constraints.txt: the torch / torchvision / compressai versions tested here (pyproject.toml has ranges)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/cosmic demo --out demo-output

test: install
	$(PY) -m pytest -n 2 --durations=15 tests

test-fast: install
	$(PY) -m pytest -n 2 -m "not slow" tests

flops: install
	$(VENV)/bin/cosmic flops --preset paper

clean:
	rm -rf $(VENV) demo-output .pytest_cache
