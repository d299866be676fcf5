# The two commands of the README. Both set everything up first (scripts/bootstrap.sh).
.PHONY: demo test bootstrap bench

demo: bootstrap
	.venv/bin/hitl demo

test: bootstrap
	.venv/bin/ruff check scrapy_hitl hitl_console projects tests bench
	.venv/bin/pytest

bootstrap:
	@scripts/bootstrap.sh

bench: bootstrap
	for b in bench/*.py; do .venv/bin/python $$b || exit 1; done
