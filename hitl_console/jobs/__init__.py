"""Crawl jobs on RQ: the runner (``runner.run_job``), the crawl worker and its settings."""
