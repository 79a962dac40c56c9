"""Identity appearance: what a pedestrian wears, region by region, and how identities are kept apart.

Each identity is a choice per body region, drawn from small sets of coarse options that a
128x64 model can see (8x4 patches of 16 pixels):

- head: hair colour and style, or a cap or beanie of a clothing colour
- upper: top colour and a coarse layout in a second colour (chest band, two-tone split,
  contrasting sleeves, a broad centre panel), long or short sleeves
- bag: none, a backpack or a handbag, of a clothing colour
- lower: trousers, shorts or a skirt of a clothing colour
- shoes: one of eight colours

:class:`IdentityPool` draws the identities of a dataset so that a half-visible person is still
identifiable: any two identities that can be confused (both training identities, or both in
the gallery) differ in at least two of the regions seen whenever the upper half is (head,
upper, bag), hence in at least two body regions (:func:`region_codes`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# clothing colours, chosen far apart so that camera lighting does not turn one into another
_PALETTE = {
    "black": (30, 30, 34), "white": (230, 230, 224), "grey": (132, 132, 136), "navy": (28, 36, 104),
    "blue": (40, 96, 204), "skyblue": (132, 192, 236), "red": (204, 30, 36), "green": (34, 142, 58),
    "yellow": (238, 208, 40), "orange": (242, 132, 28), "pink": (242, 152, 192), "purple": (122, 54, 164),
    "brown": (122, 76, 40), "teal": (20, 152, 152),
}
_NAMES = list(_PALETTE)
COLOUR_JITTER = 10.0  # per-identity RGB offset around the palette colour
_RGB = np.array([_PALETTE[n] for n in _NAMES], dtype=np.float32)
_SKIN = np.array([(236, 200, 170), (222, 178, 140), (190, 142, 104), (150, 104, 70), (102, 68, 46)], np.float32)
_HAIR = np.array([(24, 20, 18), (70, 44, 26), (120, 80, 44), (214, 184, 110), (168, 168, 168), (150, 56, 26)],
                 np.float32)
_HAIR_P = np.full(len(_HAIR), 1 / len(_HAIR))
_SHOE_NAMES = ("black", "white", "brown", "grey", "red", "blue", "yellow", "green")
PATTERNS = ("plain", "band", "split", "sleeves", "centre")  # coarse layouts of the top's second colour
HAT_STYLES = ("cap", "beanie")
BAGS = ("none", "backpack", "handbag")
LOWER_STYLES = ("trousers", "shorts", "skirt")
REGIONS = ("head", "upper", "bag", "lower", "shoes")


@dataclass(frozen=True)
class Appearance:
    """The identity-specific look of one pedestrian (colours are float RGB 0..255)."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: str  # short | long | bald
    upper: np.ndarray
    upper2: np.ndarray  # second colour of the layout
    pattern: str  # one of PATTERNS
    sleeves: str  # long | short
    lower: np.ndarray
    lower_style: str  # one of LOWER_STYLES
    skirt_length: float  # fraction of the body height (skirts)
    shoes: np.ndarray
    height: float  # body height factor
    width: float  # body width factor
    head: float  # head size factor
    hat: np.ndarray | None
    hat_style: str  # one of HAT_STYLES (when hat is not None)
    bag: str  # one of BAGS
    bag_colour: np.ndarray
    bag_side: int  # -1 left, +1 right (seen from the front)
    code: tuple = ()  # the discrete choice per body region of REGIONS (see region_codes)


def _pick(rng: np.random.Generator, names, avoid: int | None = None) -> int:
    """Index into the palette of one of ``names`` (not ``avoid``)."""
    choices = [_NAMES.index(n) for n in names if avoid is None or _NAMES.index(n) != avoid]
    return int(choices[int(rng.integers(len(choices)))])


def _jittered(rng: np.random.Generator, index: int) -> np.ndarray:
    return np.clip(_RGB[index] + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3), 0, 255).astype(np.float32)


def random_appearance(rng: np.random.Generator) -> Appearance:
    hair_i = int(rng.choice(len(_HAIR), p=_HAIR_P))
    hair_style = str(rng.choice(["short", "long", "bald"], p=[0.55, 0.35, 0.1]))
    hat_i = _pick(rng, _NAMES) if rng.random() < 0.4 else None
    hat_style = str(rng.choice(HAT_STYLES))
    upper_i = _pick(rng, _NAMES)
    upper2_i = _pick(rng, _NAMES, avoid=upper_i)
    pattern = str(rng.choice(PATTERNS, p=[0.24, 0.19, 0.19, 0.19, 0.19]))
    sleeves = str(rng.choice(["long", "short"], p=[0.7, 0.3]))
    bag = str(rng.choice(BAGS, p=[0.3, 0.35, 0.35]))
    bag_i = _pick(rng, _NAMES)
    lower_i = _pick(rng, _NAMES)
    lower_style = str(rng.choice(LOWER_STYLES, p=[0.6, 0.2, 0.2]))
    shoe_i = _pick(rng, _SHOE_NAMES)
    head_code = ("hat", hat_style, hat_i) if hat_i is not None else \
        ("hair", hair_style) if hair_style == "bald" else ("hair", hair_style, hair_i)
    upper_code = (upper_i, pattern, upper2_i if pattern != "plain" else -1)
    code = (head_code, upper_code, ("none",) if bag == "none" else (bag, bag_i), (lower_i, lower_style), (shoe_i,))
    return Appearance(
        skin=_SKIN[rng.integers(len(_SKIN))] + rng.uniform(-8, 8, 3).astype(np.float32),
        hair=_HAIR[hair_i] + rng.uniform(-6, 6, 3).astype(np.float32),
        hair_style=hair_style,
        upper=_jittered(rng, upper_i),
        upper2=_jittered(rng, upper2_i),
        pattern=pattern,
        sleeves=sleeves,
        lower=_jittered(rng, lower_i),
        lower_style=lower_style,
        skirt_length=float(rng.choice([0.26, 0.36])),
        shoes=_jittered(rng, shoe_i),
        height=float(rng.uniform(0.9, 1.05)),
        width=float(rng.uniform(0.85, 1.2)),
        head=float(rng.uniform(0.92, 1.08)),
        hat=_jittered(rng, hat_i) if hat_i is not None else None,
        hat_style=hat_style,
        bag=bag,
        bag_colour=_jittered(rng, bag_i),
        bag_side=int(rng.choice([-1, 1])),
        code=code,
    )


def region_codes(app: Appearance) -> dict[str, tuple]:
    """The discrete choice per body region of REGIONS (empty for a look-alike)."""
    if not app.code:
        return {}
    return dict(zip(REGIONS, app.code))


UPPER_REGIONS = ("head", "upper", "bag")  # seen whenever the upper half of the person is


def top_colours(app: Appearance) -> tuple[int, int]:
    """The palette indices of the top's colour and of its layout's second colour (-1: plain)."""
    main, _, second = app.code[1]
    return main, second


class IdentityPool:
    """Draws the identities of one evaluation group (the training identities; the test identities
    with the gallery distractors) so that any two differ in at least two of UPPER_REGIONS: with
    the legs hidden, or one of those regions covered too, a person is still told apart.

    Version 5 also keeps the top's colours (:func:`top_colours`) apart while unused pairs
    remain: the torso, the region an occluder leaves visible most often, then names the person on
    its own in groups up to the number of pairs (196), and larger groups repeat pairs as rarely
    as the draws allow."""

    def __init__(self, tries: int = 400):
        self.tries = tries
        self._seen: set = set()  # each identity's upper-half codes with one region left out, and its top colours

    @staticmethod
    def _keys(app: Appearance) -> list[tuple]:
        codes = region_codes(app)
        upper = [codes[r] for r in UPPER_REGIONS]
        return [(k, *upper[:k], *upper[k + 1:]) for k in range(len(upper))] + [("top", *top_colours(app))]

    def draw(self, rng: np.random.Generator) -> Appearance:
        """A new identity unlike every earlier one (the closest of ``tries`` draws for very large groups)."""
        best, best_clashes = None, None
        for _ in range(self.tries):
            app = random_appearance(rng)
            clashes = sum(key in self._seen for key in self._keys(app))
            if best is None or clashes < best_clashes:
                best, best_clashes = app, clashes
            if clashes == 0:
                break
        self._seen.update(self._keys(best))
        return best


def similar_appearance(base: Appearance, rng: np.random.Generator) -> Appearance:
    """A look-alike: ``base`` with one or two attributes drawn again (hard negatives)."""
    fresh = random_appearance(rng)
    groups = {
        "lower": ("lower", "lower_style", "skirt_length"),
        "pattern": ("pattern", "upper2", "sleeves"),
        "upper": ("upper",),
        "bag": ("bag", "bag_colour", "bag_side"),
        "hair": ("hair", "hair_style", "hat", "hat_style"),
        "shoes": ("shoes",),
        "shape": ("height", "width"),
    }
    names = list(groups)
    picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
    changes = {}
    for i in picked:
        for attr in groups[names[i]]:
            changes[attr] = getattr(fresh, attr)
    return dataclasses.replace(base, **changes, code=())  # look-alikes carry no code: they are not kept apart
