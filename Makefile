# The two commands of the README. Both set everything up first (scripts/bootstrap.sh).
.PHONY: demo test test-slow bootstrap bench

demo: bootstrap
	.venv/bin/hitl demo

test: bootstrap
	.venv/bin/ruff check scrapy_hitl hitl_console projects tests bench
	.venv/bin/pytest -m "not slow"

# Minutes of one scenario each, kept out of `make test` so it stays under 10 minutes on 2
# cores: the benchmarks' --quick smoke runs (tests/bench), the multi-host rig of network
# namespaces (tests/multihost, as root) and the 30-s Redis outage (pytest's "slow" marker).
test-slow: bootstrap
	.venv/bin/pytest -m slow

bootstrap:
	@scripts/bootstrap.sh

bench: bootstrap
	for b in bench/*.py; do .venv/bin/python $$b || exit 1; done
