"""The catalog section: product listings with the defects a quality gate must catch.

``/catalog/page/<p>`` lists products 10(p-1)+1 .. 10p (the ``/mixed`` shop's names and
prices), every one as

```html
<div class="product" data-sku="SKU-00001">
  <h2 class="name">…</h2> <span class="price">£12.34</span> <span class="stock">In stock</span>
</div>
```

except, by product number k:

- k % 10 == 4: no ``span.price`` at all (a critical field missing);
- k % 10 == 7: ``<span class="price">Price on request</span>`` (a value of another format);
- k % 50 == 39: the price is ``£4,999.00``, far above the others (a numeric outlier).

Pages are pure functions of their arguments, cached.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from .mixed import item
from .pages import layout, pager

PER_PAGE = 10


def price(k: int) -> str | None:
    if k % 10 == 4:
        return None
    if k % 10 == 7:
        return "Price on request"
    if k % 50 == 39:
        return "\u00a34,999.00"
    return item(k).price


def product(k: int) -> str:
    p = price(k)
    price_html = "" if p is None else f'<span class="price">{escape(p)}</span> '
    stock = "Out of stock" if k % 9 == 0 else "In stock"
    return (
        f'<div class="product" data-sku="SKU-{k:05d}">\n<h2 class="name">{escape(item(k).name)}</h2>\n'
        f'{price_html}<span class="stock">{stock}</span>\n</div>\n'
    )


@lru_cache(maxsize=1024)
def listing_page(page: int, total: int) -> bytes:
    first = (page - 1) * PER_PAGE + 1
    products = "".join(product(k) for k in range(first, first + PER_PAGE))
    body = (
        '<header><h1><a href="/">Sandbox Catalog</a></h1></header>\n<main>\n'
        f"{products}{pager('catalog', page, total)}</main>"
    )
    return layout(f"Sandbox Catalog - page {page}", body)
