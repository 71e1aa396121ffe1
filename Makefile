# Reproduce "Toward a Neuro-Inspired Creative Decoder" (Das, Quanz et al.) end to end.
#   make all               set up, fetch the data, run every notebook (PROFILE=paper, the default)
#   make all PROFILE=smoke the same on tiny data in minutes (results under results/smoke/)
#   make test              set up, fetch the data, run the test suite
# A second `make all` skips every notebook whose inputs have not changed.

PROFILE ?= paper
ifeq ($(filter $(PROFILE),paper smoke),)
$(error unknown PROFILE '$(PROFILE)': use PROFILE=paper or PROFILE=smoke)
endif

# Smoke notebooks are mostly kernel start-up and imports, which use one core: run two at once, one torch
# thread each (two 2-thread kernels on 2 cores slow each other about fourfold).
ifeq ($(PROFILE),smoke)
MAKEFLAGS += --jobs=2 --output-sync=target
export OMP_NUM_THREADS := 1
endif

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
SETUP    := $(VENV)/.installed
DATA     := data/splits.pt
RESULTS  := $(if $(filter paper,$(PROFILE)),results,results/$(PROFILE))
NB_OUT   := $(RESULTS)/notebooks
HTML_OUT := $(NB_OUT)/html
LIB      := paper_lib/__init__.py paper_lib/config.py paper_lib/io.py

.PHONY: all setup data notebooks test bench clean distclean help
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  PROFILE=paper (default, the paper's protocol) | smoke (tiny data, minutes); results in $(RESULTS)/"

all: setup data notebooks  ## everything: set-up, data, every notebook, every table and figure

setup: $(SETUP)  ## create .venv with the pinned packages, paper_lib (editable) and the paper-lib Jupyter kernel
$(SETUP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name paper-lib --display-name "Python (paper-lib)" >/dev/null
	touch $@

data: $(DATA)  ## obtain MNIST and Fashion-MNIST offline and verify their checksums
$(DATA): $(SETUP) paper_lib/data.py
	$(PY) -m paper_lib.data fetch

# ---------------------------------------------------------------- notebooks
# One line per notebook: $(call notebook,NAME,DATASETS or -,paper_lib modules it uses).
# Each run depends on its source, its modules and every output of the notebook before it.
define notebook
$(1)_OUT := $(if $(filter -,$(2)),$(NB_OUT)/$(1).ipynb,$(foreach d,$(2),$(NB_OUT)/$(1)_$(d).ipynb))
$$($(1)_OUT): notebooks/$(1).ipynb $(LIB) $(foreach m,$(3),paper_lib/$(m).py) $(PREVIOUS) $(DATA)
	@mkdir -p $(NB_OUT)
	$(PY) -m papermill notebooks/$(1).ipynb $$(@:.ipynb=.partial.ipynb) -k paper-lib --cwd notebooks -p profile $(PROFILE) $$(if $$(filter $(NB_OUT)/$(1).ipynb,$$@),,-p dataset $$(patsubst $(NB_OUT)/$(1)_%.ipynb,%,$$@))
	mv $$(@:.ipynb=.partial.ipynb) $$@
PREVIOUS := $$($(1)_OUT)
NOTEBOOKS += $$($(1)_OUT)
endef

PREVIOUS :=
$(eval $(call notebook,00_data,-,data))
$(eval $(call notebook,01_train_vae,mnist fmnist combined,data models train checkpoints evaluate plots reference))
$(eval $(call notebook,02_train_classifiers,mnist fmnist,data models train checkpoints evaluate plots reference))
$(eval $(call notebook,03_neuron_stats,mnist fmnist combined,hooks neurons checkpoints))
$(eval $(call notebook,04_creative_decoding,mnist fmnist combined,hooks neurons schemes decoding conv_decoder))
$(eval $(call notebook,05_novelty_metrics,mnist fmnist combined,knn metrics novelty sweep claims reference decoding))
$(eval $(call notebook,06_human_study,mnist fmnist combined,study_store study_batch study_sim study_analysis))
$(eval $(call notebook,07_figures_and_report,-,report plots claims reference sweep annotator_ui))

# HTML copies for reviewers: one nbconvert process for every notebook that changed (start-up is most of its cost).
HTML_STAMP := $(HTML_OUT)/.exported
$(HTML_STAMP): $(NOTEBOOKS)
	@mkdir -p $(HTML_OUT)
	$(PY) -m jupyter nbconvert --to html --log-level WARN --output-dir $(HTML_OUT) $?
	touch $@

notebooks: $(NOTEBOOKS) $(HTML_STAMP)

# ---------------------------------------------------------------- checks

test: setup data  ## run the test suite (unit tests on tiny data + a smoke run of the notebooks)
	$(PY) -m pytest -q

bench: setup data  ## performance benchmarks (decoding overhead, kNN speed); prints ratios
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:  ## remove generated artefacts of this PROFILE (models, statistics, samples, executed notebooks)
	rm -rf $(RESULTS)/models $(RESULTS)/stats $(RESULTS)/samples $(RESULTS)/metrics $(NB_OUT)
	$(if $(filter paper,$(PROFILE)),rm -rf results/smoke)

distclean: clean  ## also remove .venv and the downloaded data
	rm -rf $(VENV) data/raw $(DATA)
