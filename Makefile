# dycon-book: one entry point for people and CI. `make test` alone installs everything it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint bench book reproduce lessons clean-venv

setup: $(STAMP)

# Re-install only when the dependency list changes; an existing venv is reused.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,book]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check dycon tests bench
	$(VENV)/bin/ruff format --check dycon tests bench

bench: setup
	$(PY) bench/losses.py
	$(PY) bench/metrics.py
	$(PY) bench/train_step.py
	$(PY) bench/paper_cost.py
	$(PY) bench/quick_scale.py

# The book: strict full build (warnings are errors, nitpicky references) into _build/html.
# MathJax is served from the book itself (offline pages render math): npm's mathjax@3 es5/ bundle
# is copied to _vendor/mathjax once; _vendor/ is gitignored. MATHJAX_DIR can point elsewhere.
MATHJAX_VERSION := 3.2.2
MATHJAX_DIR ?= _vendor/mathjax

$(MATHJAX_DIR)/tex-chtml.js:
	@command -v npm >/dev/null || { echo "npm is needed to vendor MathJax (Node 20 + npm)" >&2; exit 1; }
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	npm install --prefix "$$tmp" --no-save --no-audit --no-fund --loglevel=error \
		mathjax@$(MATHJAX_VERSION) && \
	rm -rf "$(MATHJAX_DIR)" && mkdir -p "$(dir $(MATHJAX_DIR))" && \
	cp -R "$$tmp/node_modules/mathjax/es5" "$(MATHJAX_DIR)"

book: setup $(MATHJAX_DIR)/tex-chtml.js
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

# make reproduce TABLE=N [SCALE=quick|smoke|paper] [DATASET=...] [SEEDS=1337,1338] [PERCENTS=5,10,20]
#   [DEVICE=cpu]. SEEDS and PERCENTS default to the committed page's; without one, PERCENTS is the
#   paper's at SCALE=paper and the middle one otherwise.
#   [ROWS='AC-MT,DyCON (VNet)'] trains only those rows (labels as the table prints them).
# Runs notebooks/table.ipynb (one template, table=N) with papermill into book/tables/tableN.ipynb
# and results/tableN/, then prints
# the table. Without a prepared real dataset the embedded synthetic isles-sim stands in (a banner
# says so). SCALE=paper follows the paper's protocol and needs a GPU (see book/intro.md).
#
# make reproduce FIG=<name> [SCALE=] [DATASET=] [SEEDS=] [DEVICE=], a figure of dycon.figures.FIGURES
# (lesion-size, gradcam, curves, overlays).
# Checked here, before setup, so a typo costs no install: FIGS are the figure notebooks (a figure is
# its module in dycon/figures plus notebooks/fig_<name>.ipynb), TABLES the paper's (tests/
# test_figures.py holds both equal to dycon.figures.FIGURES and dycon.experiments.TABLES).
TABLES := 1 2 3 4 5
FIGS := $(sort $(subst _,-,$(patsubst notebooks/fig_%.ipynb,%,$(wildcard notebooks/fig_*.ipynb))))
# Runs notebooks/fig_<name>.ipynb into book/figures/<name>.ipynb and results/fig-<name>/ (runs
# in Table 1's setting at 10 % labeled, reused from Table 1 where the configs coincide).
SCALE ?= quick
DEVICE ?= auto
reproduce:
	$(if $(FIG),$(if $(TABLE),$(error give TABLE=N or FIG=name, not both)))
	$(if $(FIG),$(if $(filter-out $(FIGS),$(FIG))$(filter-out 1,$(words $(FIG))),$(error FIG=$(FIG) is not a figure; valid: $(FIGS), e.g. make reproduce FIG=curves)))
	$(if $(FIG),,$(if $(filter $(TABLE),$(TABLES)),,$(error TABLE=$(TABLE) is not a table of the paper; valid: TABLE=$(firstword $(TABLES)) to $(lastword $(TABLES)), e.g. make reproduce TABLE=1)))
	@$(MAKE) --no-print-directory setup
	$(PY) -m dycon reproduce $(if $(FIG),--fig $(FIG),--table $(TABLE)) --scale $(SCALE) \
		--device $(DEVICE) $(if $(DATASET),--dataset $(DATASET)) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(PERCENTS),--percents $(PERCENTS)) $(if $(ROWS),--rows '$(ROWS)')

# make lessons [LESSON=1|2|3|4]: execute the teaching notebooks (notebooks/lesson_*.ipynb) at their
# default parameters into book/teaching/ and record their wall-clock in results/teaching/.
lessons:
	$(if $(LESSON),$(if $(filter-out 1 2 3 4,$(LESSON))$(filter-out 1,$(words $(LESSON))),$(error LESSON=$(LESSON) is not a lesson; valid: LESSON=1 to 4, e.g. make lessons LESSON=2)))
	@$(MAKE) --no-print-directory setup
	$(PY) bench/lessons.py $(if $(LESSON),--lesson $(LESSON))

clean-venv:
	rm -rf $(VENV)
