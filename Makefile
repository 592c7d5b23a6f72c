# flowsynth: `make demo` and `make test` work on a fresh Debian 12 machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
APT_PACKAGES := amsynth jackd2 fluidsynth timgm6mb-soundfont freepats hydrogen-drumkits espeak-ng sox libsndfile1 libportaudio2 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo test lint bench clean

setup: $(VENV)/.installed

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml requirements.txt | system-packages
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@touch $@

demo: setup
	$(VENV)/bin/flowsynth demo --out out/demo

test: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q src tests

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# torchsynth, for comparison only, in an environment of its own (it needs old setuptools and lightning)
TORCHSYNTH_VENV := .venv-torchsynth
$(TORCHSYNTH_VENV)/.installed:
	python3 -m venv $(TORCHSYNTH_VENV)
	$(TORCHSYNTH_VENV)/bin/pip install -q torch==2.13.0 "setuptools<81" "pytorch-lightning<1.9" torchsynth==1.0.2
	@touch $@

bench: setup $(TORCHSYNTH_VENV)/.installed
	$(PY) bench/render_throughput.py --out bench/reports --torchsynth-python $(TORCHSYNTH_VENV)/bin/python
	$(PY) bench/dataset_time.py --out bench/reports

clean:
	rm -rf $(VENV) out .pytest_cache
