"""Selector suggestions: 20 parked pages x 5 broken fields (and their rows), end to end.

    .venv/bin/python bench/selector_suggest.py [--pages 20] [--repeat 5]

The parked pages are the sandbox catalog's listing pages after a redesign (every class
renamed, a wrapper added around the price, the stock moved before the name); the
fingerprints come from one page of the old markup, as a crawl samples them. Times
``scrapy_hitl.suggest.suggest`` (parsing the pages included). Target: <= 2 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "projects" / "sandbox"))

from parsel import Selector  # noqa: E402

from sandbox.catalog import listing_page  # noqa: E402
from scrapy_hitl.fields import Declaration, FieldSpec  # noqa: E402
from scrapy_hitl.selectorbook import sample_fingerprints  # noqa: E402
from scrapy_hitl.suggest import suggest  # noqa: E402

TARGET = 2.0
FIELDS = {"name": "h2.name::text", "price": "span.price::text", "stock": "span.stock::text",
          "sku": "::attr(data-sku)", "title": "h2::attr(class)"}


def redesign(html: str) -> str:
    return (html.replace('class="product"', 'class="item-card"').replace('class="name"', 'class="item-name"')
            .replace('<span class="price">', '<div class="cost"><span class="item-price">')
            .replace('</span> <span class="stock">', '</span></div> <span class="availability">')
            .replace("data-sku=", "data-item-sku="))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    decl = Declaration({k: FieldSpec.parse(k, v) for k, v in FIELDS.items()}, "div.product")
    known = sample_fingerprints(decl, Selector(text=listing_page(1, args.pages + 1).decode()))
    parked = [redesign(listing_page(n, args.pages + 1).decode()) for n in range(2, args.pages + 2)]
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        found = suggest(decl, parked, known)
        times.append(time.perf_counter() - start)
    best = sorted(times)[len(times) // 2]
    top = {k: (v[0]["css"] if v else None) for k, v in found["fields"].items()}
    print(f"{args.pages} pages x {len(decl.fields)} fields (+ rows): median {best:.3f} s "
          f"(target <= {TARGET} s); broken {found['broken']}; top {top}")
    return 0 if best <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
