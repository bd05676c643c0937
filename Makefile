# The two commands of the README, and the pieces they are made of.
.PHONY: setup demo test lint bench fidelity evaluate

setup:
	scripts/setup.sh

demo: setup
	scripts/demo.sh

test: setup
	.venv/bin/python -m pytest -n 2 -q
	.venv/bin/ruff check .

lint:
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/models.py --board $(or $(BOARD),mps2-an386)

fidelity: setup
	.venv/bin/python bench/fidelity.py

evaluate: setup
	.venv/bin/python bench/ari_evaluation.py $(if $(BOARD),--board $(BOARD)) --update-readme
