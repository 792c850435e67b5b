"""What the person pressed, as pure functions: key scripts -> :class:`FrameInput` -> (shift, code) actions.

No pygame here, so tests need no window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .play_config import PlayError

IDLE_WORDS = ("NOOP", "NONE", "IDLE", "STAND", "NOTHING")

DIRECTIONS = ("up", "down", "left", "right")
COMMANDS = ("reset", "pause", "tab", "sync", "record", "help", "policy", "quit", "screenshot", "keypoints")
UNUSED = "unused"  # the meaning a model card gives a code that explains (almost) no transition


@dataclass(frozen=True)
class FrameInput:
    """What the person did during one frame.

    Attributes:
        directions: direction keys held this frame (subset of "up", "down", "left", "right").
        digit: the code key pressed this frame (0..9), or None.
        commands: commands in the order given ("reset", "pause", ...).
        human: a game key (direction or digit) was pressed: the person takes control from a policy.
    """

    directions: frozenset[str] = frozenset()
    digit: int | None = None
    commands: tuple[str, ...] = ()
    human: bool = False


NOOP = FrameInput()


def _normalise_shift_name(name: str) -> frozenset[str]:
    """"up-left" / "left_up" / "UpLeft" -> {"up", "left"}; "none" / "stay" -> {} (other words are dropped)."""
    return frozenset(re.findall(r"up|down|left|right", str(name).lower()))


def shift_index(directions: Iterable[str], shift_names: list[str]) -> int:
    """The shift-grid row for a set of held direction keys.

    Opposite keys cancel; two perpendicular keys give the diagonal. When the grid has no row for the diagonal
    (a grid of 4 directions), the horizontal part, then the vertical part is used; with nothing held (or nothing
    matching) the result is the "none" row (the row whose name has no direction, else row 0).

    Args:
        directions: held keys among "up", "down", "left", "right".
        shift_names: the env's shift names (``env.unwrapped.action_meanings[0]``), e.g. "none", "up-left".
    """
    held = set(directions)
    bad = held - set(DIRECTIONS)
    if bad:
        raise ValueError(f"unknown direction(s) {sorted(bad)}; use {list(DIRECTIONS)}")
    for a, b in (("up", "down"), ("left", "right")):
        if a in held and b in held:
            held -= {a, b}
    table = {}
    for i, name in enumerate(shift_names):
        table.setdefault(_normalise_shift_name(name), i)
    vert = held & {"up", "down"}
    horiz = held & {"left", "right"}
    for want in (frozenset(held), frozenset(horiz), frozenset(vert)):
        if want and want in table:
            return table[want]
    return table.get(frozenset(), 0)


def codes_in_use(code_names: list[str]) -> list[int]:
    """The codes a person can pick, in order: every code whose meaning (the card's ``code_meanings``) is not
    :data:`UNUSED` (all codes when every one is). Key 1 selects the first, key 2 the second, ..."""
    used = [i for i, name in enumerate(code_names) if str(name).strip().lower() != UNUSED]
    return used or list(range(len(code_names)))


def idle_code(code_names: list[str]) -> int:
    """The code key 0 selects: the most confident code in use whose meaning says "no action", else the first code in
    use (code 0 when every code is in use).

    A meaning counts when its first word is one of :data:`IDLE_WORDS` ("NOOP 74%", "none", "idle");
    "NN%" in the meaning ranks several.
    """
    used = codes_in_use(code_names)
    best, best_pct = used[0] if used else 0, -1.0
    for i in used:
        name = code_names[i]
        words = re.findall(r"[A-Za-z]+", str(name))
        if not words or words[0].upper() not in IDLE_WORDS:
            continue
        m = re.search(r"(\d+(?:\.\d+)?)\s*%", str(name))
        pct = float(m.group(1)) if m else 0.0
        if pct > best_pct:
            best, best_pct = i, pct
    return best


def code_for_digit(digit: int, code_names: list[str]) -> int | None:
    """Key ``digit`` -> code index: 1..n select the n :func:`codes_in_use` in order, 0 selects :func:`idle_code`;
    None for a key beyond them."""
    if digit == 0:
        return idle_code(code_names)
    used = codes_in_use(code_names)
    return used[digit - 1] if 1 <= digit <= len(used) else None


def key_for_code(code: int, code_names: list[str]) -> int | None:
    """The digit key that selects ``code`` (None for an unused code or one beyond key 9)."""
    used = codes_in_use(code_names)
    return used.index(code) + 1 if code in used and used.index(code) < 9 else None


def _parse_token(token: str) -> FrameInput:
    dirs: set[str] = set()
    digit: int | None = None
    cmds: list[str] = []
    for part in token.lower().split("+"):
        if part in DIRECTIONS:
            dirs.add(part)
        elif part.isdigit() and len(part) == 1:
            digit = int(part)
        elif part in COMMANDS:
            cmds.append(part)
        elif part != "noop":
            raise PlayError(f"keys: unknown token part {part!r} in {token!r}; use up/down/left/right (joined with "
                            f"+ for diagonals), a digit 0-9, noop, {', '.join(COMMANDS)}; TOKEN*N repeats")
    return FrameInput(frozenset(dirs), digit, tuple(cmds), bool(dirs) or digit is not None)


def parse_keys(script: str) -> list[FrameInput]:
    """A key script ("right*20 1 up+left noop*5 reset") -> one :class:`FrameInput` per frame."""
    out: list[FrameInput] = []
    for raw in script.split():
        token, _, count = raw.partition("*")
        if count:
            if not count.isdigit():
                raise PlayError(f"keys: bad repeat {raw!r}; write TOKEN*N with N a whole number, e.g. right*20")
            n = int(count)
        else:
            n = 1
        if not token:
            raise PlayError(f"keys: empty token in {raw!r}")
        out.extend([_parse_token(token)] * n)
    return out
