"""Where the odd one out goes in a `pairs` round of an odd roster, so that over n-1 rounds
everyone meets everyone.

With an odd number n the circle method gives each member one bye per cycle of n rounds, and the
member with the bye joins a pair as a trio. The circle's pairs of the cycle's last round are
the ones its first n-1 rounds never make; left to chance (the trio was simply the pair in place
1), two pairs of a 7-member rota went six weeks without meeting while others met twice. Here
the trio is chosen so that each of those pairs meets in a trio within the first n-1 rounds, and
the old fairness stays: over a cycle everyone is in the trio exactly three times, and the trio
is never the same three people two rounds running (tests/test_pairing.py checks both, and the
property tests check the meetings).

`HOSTS[n][r]` is, for round r of a cycle, the roster indexes of the pair the bye joins, in the
order the trio lists them (which decides who rings whom without a call history). The table was
made by `search` below, a depth-first search taking seconds for most sizes and minutes for some,
so it is kept rather than run at each round; the tests check every entry. Sizes above 45 use
`direct`: each bye joins the pair holding their partner of the cycle's last round, which gives
the same meetings with trio counts off by one for three members.

Five is different (`five_round`): with the circle no plan meets everyone in four rounds, and an
exhaustive look at every grouping shows that doing it with each member in the same number of
trios puts one pair together in all four rounds. So five runs in blocks of four rounds: in a
block one member is in the pair every round, ringing each of the other four once, while those
four meet each other twice in the trios; the next block hands that place to the next member.
Every four rounds everyone meets everyone (no pair more than twice), and over the 20-round
cycle everyone has the pair place for one block and is in the trio twelve times.
"""
from __future__ import annotations

from functools import cache
from typing import cast

HOSTS: dict[int, tuple[tuple[int, int], ...]] = {
    7: ((1, 4), (2, 1), (3, 5), (0, 6), (4, 0), (6, 3), (5, 2),),
    9: ((6, 1), (3, 2), (0, 3), (4, 6), (8, 0), (1, 5), (5, 8), (7, 4), (2, 7),),
    11: ((8, 1), (2, 5), (3, 2), (10, 4), (5, 7), (7, 3), (0, 8), (6, 0), (9, 6), (4, 9), (1, 10),),
    13: ((10, 1), (2, 7), (4, 3), (1, 4), (5, 11), (8, 6), (7, 5), (0, 10), (12, 9), (6, 0), (9, 8), (3, 12), (11, 2),),
    15: ((1, 12), (9, 2), (6, 3), (3, 4), (0, 5), (12, 6), (7, 9), (4, 10), (5, 7), (11, 14), (10, 13), (13, 8), (8, 11), (2, 0), (14, 1),),
    17: ((14, 1), (2, 11), (3, 8), (4, 5), (5, 2), (16, 6), (13, 7), (8, 10), (7, 9), (11, 3), (0, 12), (10, 0), (12, 13), (9, 14), (6, 15), (15, 4), (1, 16),),
    19: ((16, 1), (13, 2), (10, 3), (7, 4), (4, 5), (1, 6), (17, 7), (14, 8), (11, 9), (8, 10), (3, 13), (0, 14), (12, 0), (18, 11), (15, 12), (9, 16), (5, 18), (6, 15), (2, 17),),
    21: ((1, 18), (2, 15), (12, 3), (9, 4), (6, 5), (3, 6), (0, 7), (18, 8), (15, 9), (10, 12), (7, 13), (8, 10), (20, 17), (14, 0), (11, 1), (17, 14), (13, 16), (16, 11), (5, 20), (4, 19), (19, 2),),
    23: ((20, 1), (2, 17), (3, 14), (4, 11), (8, 5), (5, 6), (7, 2), (22, 8), (19, 9), (16, 10), (11, 13), (10, 12), (13, 7), (15, 3), (0, 16), (17, 20), (14, 21), (18, 15), (12, 19), (6, 0), (9, 18), (21, 4), (1, 22),),
    25: ((1, 22), (2, 19), (16, 3), (13, 4), (5, 10), (7, 6), (4, 7), (8, 1), (9, 23), (10, 20), (17, 11), (12, 14), (11, 13), (14, 8), (15, 5), (0, 18), (24, 17), (18, 21), (22, 15), (19, 16), (21, 12), (6, 0), (20, 9), (3, 24), (23, 2),),
    27: ((1, 24), (2, 21), (18, 3), (15, 4), (5, 12), (9, 6), (6, 7), (3, 8), (0, 9), (24, 10), (21, 11), (12, 18), (13, 15), (10, 16), (11, 13), (8, 14), (19, 1), (22, 23), (23, 20), (14, 0), (17, 22), (20, 17), (16, 19), (7, 26), (26, 5), (4, 25), (25, 2),),
    29: ((1, 26), (23, 2), (3, 20), (17, 4), (5, 14), (6, 11), (7, 8), (8, 5), (2, 9), (10, 28), (11, 25), (12, 22), (13, 19), (14, 16), (15, 13), (16, 10), (9, 15), (19, 3), (22, 27), (26, 21), (21, 24), (25, 18), (18, 23), (27, 12), (20, 17), (0, 6), (4, 0), (24, 7), (28, 1),),
    31: ((1, 28), (2, 25), (22, 3), (19, 4), (5, 16), (13, 6), (7, 10), (8, 7), (4, 9), (10, 1), (11, 29), (26, 12), (23, 13), (14, 20), (15, 17), (16, 14), (17, 11), (18, 8), (9, 15), (0, 22), (28, 23), (25, 24), (21, 26), (27, 18), (24, 19), (20, 21), (12, 27), (6, 0), (30, 5), (3, 30), (29, 2),),
    33: ((1, 30), (27, 2), (3, 24), (4, 21), (18, 5), (15, 6), (12, 7), (9, 8), (6, 9), (10, 3), (0, 11), (30, 12), (13, 27), (24, 14), (21, 15), (16, 18), (19, 13), (14, 16), (11, 17), (7, 19), (20, 4), (29, 26), (28, 25), (22, 29), (26, 23), (25, 22), (17, 28), (23, 20), (31, 10), (8, 31), (5, 32), (2, 0), (32, 1),),
    35: ((1, 32), (2, 29), (26, 3), (23, 4), (5, 20), (6, 17), (7, 14), (8, 11), (9, 8), (10, 5), (11, 2), (12, 34), (13, 31), (14, 28), (15, 25), (22, 16), (17, 19), (16, 18), (19, 13), (18, 12), (21, 7), (3, 23), (0, 24), (24, 33), (25, 30), (27, 26), (29, 22), (28, 21), (20, 27), (30, 15), (33, 10), (32, 9), (4, 0), (31, 6), (34, 1),),
    37: ((1, 34), (31, 2), (3, 28), (4, 25), (22, 5), (19, 6), (16, 7), (13, 8), (10, 9), (7, 10), (11, 4), (12, 1), (35, 13), (32, 14), (29, 15), (26, 16), (23, 17), (20, 18), (17, 19), (14, 20), (21, 11), (18, 12), (5, 23), (0, 26), (34, 27), (28, 31), (33, 24), (25, 30), (24, 29), (30, 21), (27, 22), (15, 32), (9, 36), (6, 0), (8, 33), (36, 3), (2, 35),),
    39: ((1, 36), (33, 2), (3, 30), (4, 27), (24, 5), (21, 6), (7, 18), (8, 15), (9, 12), (10, 9), (6, 11), (12, 3), (0, 13), (36, 14), (15, 33), (30, 16), (27, 17), (18, 24), (19, 21), (16, 22), (17, 19), (14, 20), (22, 10), (23, 7), (38, 29), (26, 0), (28, 35), (29, 32), (34, 25), (31, 26), (32, 23), (25, 28), (20, 31), (11, 38), (13, 34), (5, 1), (35, 8), (37, 4), (2, 37),),
    41: ((38, 1), (35, 2), (32, 3), (29, 4), (5, 26), (23, 6), (20, 7), (8, 17), (14, 9), (10, 11), (11, 8), (12, 5), (2, 13), (40, 14), (37, 15), (34, 16), (17, 31), (28, 18), (19, 25), (22, 20), (21, 19), (16, 22), (15, 21), (24, 10), (9, 23), (3, 27), (0, 28), (30, 37), (36, 29), (33, 30), (27, 34), (26, 33), (25, 32), (31, 24), (18, 35), (39, 12), (13, 36), (6, 0), (7, 38), (4, 39), (1, 40),),
    43: ((40, 1), (37, 2), (34, 3), (31, 4), (5, 28), (6, 25), (22, 7), (8, 19), (9, 16), (13, 10), (10, 11), (7, 12), (4, 13), (1, 14), (15, 41), (16, 38), (35, 17), (32, 18), (19, 29), (26, 20), (23, 21), (20, 22), (17, 23), (14, 24), (21, 15), (25, 9), (24, 8), (41, 32), (38, 33), (39, 30), (36, 31), (29, 36), (28, 35), (27, 34), (33, 26), (30, 27), (18, 37), (11, 42), (12, 39), (0, 6), (42, 5), (2, 0), (3, 40),),
    45: ((1, 42), (39, 2), (3, 36), (4, 33), (30, 5), (6, 27), (7, 24), (21, 8), (18, 9), (15, 10), (12, 11), (9, 12), (13, 6), (14, 3), (0, 15), (42, 16), (17, 39), (36, 18), (33, 19), (20, 30), (27, 21), (24, 22), (19, 25), (22, 20), (23, 17), (25, 13), (10, 26), (11, 23), (34, 43), (43, 32), (35, 38), (31, 40), (32, 37), (38, 29), (37, 28), (29, 34), (26, 35), (28, 31), (16, 41), (41, 14), (8, 0), (2, 4), (5, 44), (40, 7), (44, 1),),
}


def _rounds(n: int) -> list[list[tuple[int | None, int | None]]]:
    from phonetree.pairing import _circle

    slots: list[int | None] = [None, *range(n)]
    return [_circle(slots, r) for r in range(n)]


@cache
def direct(n: int) -> tuple[int | None, ...]:
    """The simple plan for an odd n: the bye joins their partner of the cycle's last round
    (none for the last round itself, which keeps the default place)."""
    rounds = _rounds(n)
    last = {m: (a if b == m else b) for a, b in rounds[-1] if None not in (a, b) for m in (a, b)}
    plan: list[int | None] = []
    for r, pairs in enumerate(rounds):
        bye = next(b if a is None else a for a, b in pairs if None in (a, b))
        plan.append(last.get(bye) if r < n - 1 else None)
    return tuple(plan)


FIVE_BLOCK = 4  # rounds in which one member of five keeps the pair place
FIVE_CYCLE = 5 * FIVE_BLOCK


def five_round(round_index: int) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """Roster indexes of the pair and the trio in round `round_index` of a five-member rota."""
    block, step = divmod(round_index % FIVE_CYCLE, FIVE_BLOCK)
    partner = (block + 1 + step) % 5
    trio = [(block + k) % 5 for k in range(1, 5) if (block + k) % 5 != partner]
    return (block, partner), (trio[0], trio[1], trio[2])


def host_pair(n: int, round_in_cycle: int) -> tuple[int, int] | int | None:
    """The roster indexes of the pair the bye joins, in order (from HOSTS); or for a size not
    in it the index of one member of that pair (`direct`); or None for the default place."""
    if n % 2 == 0 or n < 7:
        return None  # even: no trio; 3: one trio of all; 5: five_round, see the module docstring
    if n in HOSTS:
        return HOSTS[n][round_in_cycle]
    return direct(n)[round_in_cycle]


def search(n: int) -> tuple[tuple[int, int], ...] | None:
    """How HOSTS was made: for each round a host pair such that the trios cover the pairs the
    cycle's first n-1 rounds miss, no pair meets more than twice in them,
    each member is in three trios, and no two consecutive
    trios are the same three. Depth first, covering pairs first; None if there is no way."""
    rounds = _rounds(n)
    byes = [next(b if a is None else a for a, b in rd if None in (a, b)) for rd in rounds]
    pairs = [[(a, b) for a, b in rd if None not in (a, b)] for rd in rounds]
    last = {m: (a if b == m else b) for a, b in pairs[n - 1] for m in (a, b)}
    bye_round = {byes[r]: r for r in range(n)}
    count = [1] * n  # each member is the bye once
    # Meetings in the cycle's first n-1 rounds: the circle's pairs once each (all but the last
    # round's), plus the bye's two in each trio. No pair may meet a third time.
    met = {frozenset(p): 1 for rd in pairs[:-1] for p in rd}
    choice: list[tuple[int, int] | None] = [None] * n

    def trio(r: int) -> set[int]:
        host = choice[r]
        assert host is not None
        return {*host, byes[r]}  # type: ignore[arg-type]

    def step(r: int, uncovered: frozenset[frozenset[int]]) -> bool:
        if r == n:
            return not uncovered and trio(n - 1) != trio(0)
        options = []
        for pair in pairs[r]:
            if any(count[m] >= 3 for m in pair):  # type: ignore[index]
                continue
            members = {*pair, byes[r]}
            if r and members == trio(r - 1):
                continue
            extra = [frozenset((byes[r], m)) for m in pair] if r < n - 1 else []
            if any(met.get(p, 0) >= 2 for p in extra):
                continue
            newly = frozenset(p for p in uncovered if p <= members) if r < n - 1 else frozenset()
            options.append((-len(newly), pair, newly, extra))
        options.sort(key=lambda option: option[0])
        for _, pair, newly, extra in options:
            rest = uncovered - newly
            if any(max(bye_round[a], bye_round[b]) <= r for a, b in (tuple(p) for p in rest)):
                continue  # a pair neither of whose byes is still to come can't be covered now
            for m in pair:
                count[m] += 1  # type: ignore[index]
            for p in extra:
                met[p] = met.get(p, 0) + 1
            choice[r] = pair  # type: ignore[assignment]
            if step(r + 1, rest):
                return True
            for m in pair:
                count[m] -= 1  # type: ignore[index]
            for p in extra:
                met[p] -= 1
        choice[r] = None
        return False

    # No None in it: the last round's pairs above are the ones without the bye.
    missing = cast(frozenset[frozenset[int]], frozenset(frozenset((m, last[m])) for m in last))
    if not step(0, missing):
        return None
    return orient([host for host in choice if host is not None])


def orient(hosts: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Order each round's host pair (first, second) so that each member is first once and
    second once in a cycle. Without history the second of the pair rings twice over a round
    and its repeat a cycle later (opposite parity) and the first once, so this keeps calling
    duty equal over two cycles. Each member hosts twice, so the pairs form cycles (a member,
    a pair, the next member, ...): walking each cycle one way orders them all."""
    edges: dict[int, list[int]] = {m: [] for pair in hosts for m in pair}
    for r, (a, b) in enumerate(hosts):
        edges[a].append(r)
        edges[b].append(r)
    ordered: list[tuple[int, int] | None] = [None] * len(hosts)
    for start in sorted(edges):
        member = start
        while True:
            free = next((r for r in edges[member] if ordered[r] is None), None)
            if free is None:
                break
            a, b = hosts[free]
            other = b if a == member else a
            ordered[free] = (member, other)
            member = other
    return tuple(pair for pair in ordered if pair is not None)
