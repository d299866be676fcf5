# The two commands of the README. Both set everything up first (scripts/bootstrap.sh).
.PHONY: demo test test-slow bootstrap bench

demo: bootstrap
	.venv/bin/hitl demo

test: bootstrap
	.venv/bin/ruff check scrapy_hitl hitl_console projects tests bench
	.venv/bin/pytest -m "not slow"

# The benchmarks' --quick smoke runs (tests/bench): minutes of crawls that only check each
# benchmark still runs; kept out of `make test` so it stays under 10 minutes on 2 cores.
test-slow: bootstrap
	.venv/bin/pytest -m slow

bootstrap:
	@scripts/bootstrap.sh

bench: bootstrap
	for b in bench/*.py; do .venv/bin/python $$b || exit 1; done
