"""The quality gate: score every item, deliver the good ones, hold the doubtful for a human.

- ``scoring``: the four parts of an item's confidence and their weighted sum (pure).
- ``consistency``: what earlier items of the run say a field looks like (types, formats,
  numeric ranges), per run, in bounded memory.
- ``schemas`` and ``fields``: JSON Schemas per item type; required and critical fields.
- ``routing``: confidence -> delivered / optional_review / pending_review (pure).
- ``source``: the spider middleware that tells the pipeline which response an item came from,
  and the empty-page guardrail (selector drift for spiders without ``hitl_expect``).
- ``pipeline`` + ``writer``: the item pipeline and its batched writes off the reactor.
- ``export``: the approved and delivered items of a run as JSON, JSON lines, CSV or XLSX.

See docs/quality.md.
"""
