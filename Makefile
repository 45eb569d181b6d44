# Lectern: `make demo` runs the whole pipeline on the embedded defaults; `make test` runs ruff, then every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export LECTERN_HOME ?= $(CURDIR)/.lectern
APT_PACKAGES := ffmpeg tesseract-ocr tesseract-ocr-eng espeak-ng fonts-dejavu-core curl radosgw ceph-mon ceph-osd ceph-common chromium docker-compose
STAMP := $(VENV)/.lectern-installed

.PHONY: setup system-packages demo test test-fast test-images reliability bench clean

setup: system-packages $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): requirements.txt requirements-airflow.txt requirements-ml.txt requirements-test.txt requirements-test-nodeps.txt pyproject.toml scripts/install-python.sh scripts/install-image.sh $(wildcard locks/*.txt)
	VENV=$(VENV) scripts/install-python.sh
	touch $@

demo: setup
	$(PY) -m lectern demo

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The Dockerfile's three targets built with buildah from a local Debian base, each run on a demo video, the worker's
# CUDA libraries loaded (not in `make test`: ~9 GB of CUDA wheels, ~10 min); writes bench/results/images.md.
test-images: setup
	@for p in buildah debootstrap; do command -v $$p >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get install -y -qq --no-install-recommends buildah debootstrap >/dev/null; break; }; done
	$(PY) -m pytest -q -m images tests/images

# The fault-injection suite alone (it is part of `make test` too); prints the fault / survived / lost table.
reliability: setup
	$(PY) -m pytest -q tests/reliability

# The benchmark suite (not part of `make test`): one summary table with the machine it ran on; ~3 h on 2 cores.
bench: setup
	cd bench && $(abspath $(PY)) run.py

clean:
	rm -rf .lectern test-artifacts
