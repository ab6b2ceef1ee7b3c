# mask3d-bench: every target bootstraps .venv through `install` (a stamp makes it a no-op once done).
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
export PYTHONUNBUFFERED := 1
# GNU OpenMP's default busy-waiting starves torch on shared cores (measured 50x slower inference under load).
export OMP_WAIT_POLICY ?= PASSIVE

# User knobs (see README): CONFIG, DATA (pre-training dataset names), OUTPUT, INIT, ARGS.
CONFIG ?=
DATA ?=
OUTPUT ?=
INIT ?=
ARGS ?=
TABLE ?=
INITS ?=
SEEDS ?=
# The data root, as datasets/builtin.py resolves it ($MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data).
DATA_ROOT := $(or $(MASK3D_DATA),$(DETECTRON2_DATASETS),data)

.DEFAULT_GOAL := help
.PHONY: help install doctor test pretrain data-synthetic data-synthetic-extra bench-scannet bench-nyu bench-cityscapes \
        tables speed repro-mini repro-mini-ablation reproduce probe gpu-check lint format clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {name[++n] = $$1; text[n] = $$2; if (length($$1) > w) w = length($$1)} \
	     END {for (i = 1; i <= n; i++) printf "  %-" w "s  %s\n", name[i], text[i]}' $(MAKEFILE_LIST)

install: $(STAMP) ## create .venv with the pinned stack and detectron2 (idempotent)

$(STAMP): requirements.txt tools/install.sh
	bash tools/install.sh

doctor: install ## print versions and devices; fail if something we need is missing
	$(PY) -m tools.doctor

probe: install ## linear probes (semantic mIoU, depth AbsRel/delta1) on a frozen encoder: INIT=mask3d:PATH [DATASET=synthetic]
	$(PY) -m benchmark.probe --init $(or $(INIT),random) --dataset $(or $(DATASET),synthetic) $(if $(OUTPUT),--output-dir $(OUTPUT)) $(ARGS)

gpu-check: install ## GPU readiness in < 8 min on one H100/H200: a line per stage, MFU, results/gpu_check.json (ARGS=--smoke: CPU walk-through)
	$(PY) -m tools.gpu_check $(ARGS)

lint: install ## ruff: lint and format check (settings in pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## ruff: fix what can be fixed and format the code
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test: install ## run the test suite (pytest)
	$(PY) -m pytest -q tests $(ARGS)

data-synthetic: install ## generate the embedded synthetic RGB-D scenes under data/ (skips what exists)
	$(PY) -m tools.make_synthetic --out $(DATA_ROOT)/synthetic_raw --scenes 24 --frames-per-scene 40 --seed 0 --height 240 --width 320 --skip-existing
	$(PY) -m tools.prepare_scannet --raw $(DATA_ROOT)/synthetic_raw --out $(DATA_ROOT)/synthetic --frame-skip 1

data-synthetic-extra: install ## other seeds' scenes: a pre-training pool and a supervised control's labelled set (skips what exists)
	$(PY) -m tools.make_synthetic --out $(DATA_ROOT)/synthetic_pool_raw --scenes 96 --frames-per-scene 16 --seed 1 --height 240 --width 320 --skip-existing
	$(PY) -m tools.prepare_scannet --raw $(DATA_ROOT)/synthetic_pool_raw --out $(DATA_ROOT)/synthetic_pool --frame-skip 1
	$(PY) -m tools.make_synthetic --out $(DATA_ROOT)/synthetic_control_raw --scenes 24 --frames-per-scene 40 --seed 2 --height 240 --width 320 --skip-existing
	$(PY) -m tools.prepare_scannet --raw $(DATA_ROOT)/synthetic_control_raw --out $(DATA_ROOT)/synthetic_control --frame-skip 1

pretrain: install $(if $(CONFIG)$(DATA),,data-synthetic) ## masked RGB-D pre-training (CPU preset on synthetic data by default)
	$(PY) -m pretrain --config $(or $(CONFIG),pretrain/configs/default_cpu.py) --resume $(if $(DATA),data.names=$(DATA)) $(if $(OUTPUT),train.output_dir=$(OUTPUT)) $(ARGS)

bench-scannet: install ## fine-tune + evaluate on ScanNet (synthetic tree if ScanNet is absent)
	@test -f $(DATA_ROOT)/scannet/meta.json || $(MAKE) --no-print-directory data-synthetic
	$(PY) -m benchmark.suite scannet $(if $(INIT),--init $(INIT)) $(if $(OUTPUT),--output $(OUTPUT)) $(ARGS)

bench-nyu: install ## fine-tune + evaluate on NYUv2
	$(PY) -m benchmark.suite nyuv2 $(if $(INIT),--init $(INIT)) $(if $(OUTPUT),--output $(OUTPUT)) $(ARGS)

bench-cityscapes: install ## fine-tune + evaluate on Cityscapes
	$(PY) -m benchmark.suite cityscapes $(if $(INIT),--init $(INIT)) $(if $(OUTPUT),--output $(OUTPUT)) $(ARGS)

tables: install ## regenerate results/REPORT.md from paper numbers and committed campaign records (ARGS=--scratch adds output/runs.jsonl, written to output/report/)
	$(PY) -m results.report $(ARGS)

speed: install ## throughput benchmarks as same-run ratios, written to results/speed.json
	$(PY) -m tools.speed $(ARGS)

repro-mini: install ## the paper's claim in miniature on CPU, 1 h 34 min on 2 cores from an empty store (resumable; records in results/runs/repro_mini_2.jsonl)
	$(PY) -m tools.reproduce repro_mini $(ARGS)

repro-mini-ablation: install ## mask3d's RGB/depth mask ratios in miniature, probed, ~34 min (records in results/runs/repro_mini_ablation.jsonl)
	$(PY) -m tools.repro_mini --ablation $(ARGS)

reproduce: install ## fill one paper table: TABLE=scannet_semseg [INITS=mask3d:PATH,imagenet_mae_vitb,random] [SEEDS=3] [ARGS=--dry-run|--check|--tiny|--slurm]
	$(PY) -m tools.reproduce $(TABLE) $(if $(INITS),--inits $(INITS)) $(if $(SEEDS),--seeds $(SEEDS)) $(ARGS)

clean: ## remove .venv, caches and outputs (keeps data/ and results/)
	rm -rf .venv .cache .pytest_cache output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
