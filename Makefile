# Two entry points (see README): `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast docs flops clean wheelhouse device-kit device-tree home-tree

# constraints.txt: the torch / torchvision / compressai versions tested here (pyproject.toml has ranges)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,train,docs]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/cosmic demo --out demo-output

test: install
	$(PY) -m pytest -n 2 --durations=15 tests

test-fast: install
	$(PY) -m pytest -n 2 -m "not slow" tests

# The documentation site (mkdocs.yml, pages under docs/, the API reference from the docstrings):
# strict, so a broken link, anchor or docstring fails the build; .ci/run runs it after the tests.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

flops: install
	$(VENV)/bin/cosmic flops --preset paper

# Offline installs (issue 31; docs/guide/air-gapped.md). `make wheelhouse`: every runtime dependency
# a stock PyTorch machine lacks, pinned to the versions installed here, for this Python, or for
# another with WHEEL_PYTHON=3.12 (manylinux x86-64); install there with
# `pip install --no-index --find-links wheelhouse/pyX.Y .` (the machine's torch is kept).
WHEEL_PYTHON ?=
WHEEL_DIR    ?= wheelhouse/py$(or $(WHEEL_PYTHON),$(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
wheelhouse: install
	$(PY) scripts/wheelhouse.py download $(WHEEL_DIR) --set all $(if $(WHEEL_PYTHON),--python-version $(WHEEL_PYTHON))

# The lent GPU's kit in .device-kit/ (carried by the device call): the trainer's wheels for what the
# GPU image lacks (DEVICE_HAS: what the device tool's KINDS.md lists there) and the data pack.
DEVICE_PYTHON ?= 3.12
DEVICE_HAS    ?= scipy,numpy,pillow,safetensors,einops,tqdm,typer,click,rich,shellingham,annotated-doc
device-kit: install
	rm -rf .device-kit/wheels
	$(PY) scripts/wheelhouse.py download .device-kit/wheels --set trainer --python-version $(DEVICE_PYTHON) --skip $(DEVICE_HAS)
	test -f .device-kit/ucm-pack.zip || $(PY) scripts/make_data_pack.py --out .device-kit/ucm-pack.zip
	$(PY) scripts/travel_size.py --home-only --carry .device-kit

# For the duration of a device call: leave scripts/device-tree.home's paths out of the work tree
# (a sparse checkout; nothing is deleted from git), then bring them back.
device-tree:
	{ echo '/*'; sed -n 's|^\([^#].*\)|!/\1|p' scripts/device-tree.home; } | git sparse-checkout set --no-cone --stdin
	$(PYTHON) scripts/travel_size.py --carry .device-kit
home-tree:
	git sparse-checkout disable

clean:
	rm -rf $(VENV) demo-output .pytest_cache site
