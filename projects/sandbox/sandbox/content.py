"""Deterministic quote data: the same id gives the same quote in every run and process."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

PER_PAGE = 10

# (name, born) — all authors long in the public domain.
AUTHORS = (
    ("Mark Twain", "November 30, 1835 in Florida, Missouri, The United States"),
    ("Oscar Wilde", "October 16, 1854 in Dublin, Ireland"),
    ("Jane Austen", "December 16, 1775 in Steventon Rectory, Hampshire, The United Kingdom"),
    ("Benjamin Franklin", "January 17, 1706 in Boston, Massachusetts, The United States"),
    ("Ralph Waldo Emerson", "May 25, 1803 in Boston, Massachusetts, The United States"),
    ("Henry David Thoreau", "July 12, 1817 in Concord, Massachusetts, The United States"),
    ("Marcus Aurelius", "April 26, 121 in Rome, Italy"),
    ("Seneca", "c. 4 BC in Corduba, Hispania"),
    ("Leo Tolstoy", "September 9, 1828 in Yasnaya Polyana, Russia"),
    ("Charles Dickens", "February 7, 1812 in Portsmouth, The United Kingdom"),
    ("Aristotle", "384 BC in Stagira, Chalcidice"),
    ("Abraham Lincoln", "February 12, 1809 in Hodgenville, Kentucky, The United States"),
    ("Emily Dickinson", "December 10, 1830 in Amherst, Massachusetts, The United States"),
    ("Voltaire", "November 21, 1694 in Paris, France"),
    ("Epictetus", "c. 50 in Hierapolis, Phrygia"),
    ("William Shakespeare", "April 26, 1564 in Stratford-upon-Avon, The United Kingdom"),
    ("Confucius", "551 BC in Qufu, Lu"),
    ("Lao Tzu", "6th century BC in Chu, Zhou dynasty"),
)

# (text, index into AUTHORS)
TEXTS = (
    ("The secret of getting ahead is getting started.", 0),
    ("Kindness is the language which the deaf can hear and the blind can see.", 0),
    ("The man who does not read has no advantage over the man who cannot read.", 0),
    ("Be yourself; everyone else is already taken.", 1),
    ("We are all in the gutter, but some of us are looking at the stars.", 1),
    ("There is no charm equal to tenderness of heart.", 2),
    ("I declare after all there is no enjoyment like reading!", 2),
    ("Well done is better than well said.", 3),
    ("An investment in knowledge pays the best interest.", 3),
    ("The only way to have a friend is to be one.", 4),
    ("Nothing great was ever achieved without enthusiasm.", 4),
    ("Go confidently in the direction of your dreams.", 5),
    ("Our life is frittered away by detail. Simplify, simplify.", 5),
    ("The happiness of your life depends upon the quality of your thoughts.", 6),
    ("Waste no more time arguing about what a good man should be. Be one.", 6),
    ("Luck is what happens when preparation meets opportunity.", 7),
    ("While we are postponing, life speeds by.", 7),
    ("The two most powerful warriors are patience and time.", 8),
    ("If you want to be happy, be.", 8),
    ("No one is useless in this world who lightens the burdens of another.", 9),
    ("Have a heart that never hardens, and a temper that never tires.", 9),
    ("Knowing yourself is the beginning of all wisdom.", 10),
    ("Whatever you are, be a good one.", 11),
    ("Hope is the thing with feathers that perches in the soul.", 12),
    ("Judge a man by his questions rather than by his answers.", 13),
    ("It is not what happens to you, but how you react to it that matters.", 14),
    ("All the world's a stage, and all the men and women merely players.", 15),
    ("We know what we are, but know not what we may be.", 15),
    ("It does not matter how slowly you go as long as you do not stop.", 16),
    ("A journey of a thousand miles begins with a single step.", 17),
)

TAGS = (
    "life", "love", "inspirational", "humor", "books", "reading", "friendship", "wisdom",
    "truth", "simplicity", "courage", "hope", "time", "change", "success", "philosophy",
)  # fmt: skip


@dataclass(frozen=True)
class Quote:
    id: int
    text: str
    author: str
    born: str
    tags: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "author": self.author,
                "born": self.born, "tags": list(self.tags)}  # fmt: skip


@lru_cache(maxsize=4096)
def quote(qid: int) -> Quote:
    """Quote number ``qid`` (>= 1); 7 is coprime with len(TEXTS), so ids 1..30 are all distinct."""
    text, author_index = TEXTS[(qid * 7) % len(TEXTS)]
    author, born = AUTHORS[author_index]
    rng = random.Random(qid)  # an int seed is stable across runs and PYTHONHASHSEED
    tags = tuple(sorted(rng.sample(TAGS, rng.randint(1, 4))))
    return Quote(qid, f"\u201c{text}\u201d", author, born, tags)


def page_quotes(page: int, per_page: int = PER_PAGE) -> list[Quote]:
    """The quotes listed on page ``page`` (1-based) of a paginated section."""
    first = (page - 1) * per_page + 1
    return [quote(qid) for qid in range(first, first + per_page)]
