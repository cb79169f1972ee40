"""Who talks to whom in a call rota: pure functions, no database.

The rota module decides *when* a round happens and who is away; this module decides the groups and
who rings whom. Everything is deterministic: the same inputs always give the same round, so a
round can be recomputed (for a reminder, a re-send, a preview) and will match what was sent.

Final API
---------
``Group = tuple[str, ...]`` -- a pair, or a trio (at most one per round). ``Call = tuple[str, str]``
-- (caller, callee). Members are named by unique strings throughout.

``balanced_members(all_members, unavailable) -> list[str]``
    The members taking part in a round: ``all_members`` minus ``unavailable``, order kept.

``pairs_round(members, round_index, avoid=(), absent=()) -> list[Group]``
    Round-robin by the circle method over the whole ordered roster ``members``. With an even
    roster, rounds 0..n-2 pair everyone with everyone exactly once and round r + (n-1) repeats
    round r; with an odd roster the cycle is n rounds long and the member who would have a bye
    joins a pair as a trio instead (five members: a 20-round plan of its own, see
    phonetree.trio_hosts.five_round, so that every four rounds everyone meets everyone). ``absent`` members are dropped from their slot and the partners
    they leave behind are paired with each other (an odd one out makes the trio), so everybody
    else keeps their place in the schedule. ``avoid`` pairs (do-not-pair) are repaired by swapping
    partners with other groups of the same round; :class:`PairingError` (a ``ValueError``) if no
    grouping of the members taking part can honour them.

``calls_for_groups(groups, round_index, history=None, next_groups=None) -> list[Call]``
    A pair makes one call; a trio makes two as a chain ``a -> b -> c``. Without ``history`` the
    caller alternates with the parity of ``round_index``. With ``history`` (calls made so far) the
    member who has made fewer calls rings; ties are settled by looking one round ahead at
    ``next_groups`` so the following round can even things out again (see below).

``ring_round(members, round_index) -> list[Call]``
    'ring' rotas: every member rings exactly one other and is rung by exactly one, in a single
    cycle through everyone, and each member's callee changes from one round to the next. With an
    odd number, every member rings every other member exactly once per n-1 rounds (Walecki's
    decomposition of the complete graph into Hamiltonian cycles, each run both ways); an even
    number adds the last member into the odd construction of the others.

Design decisions
----------------
* The trio is a chain of two calls (a rings b, b rings c), not a three-call loop or a hub: two
  calls put all three in touch (b relays), nobody makes two calls in a round, and it leaves one
  member of the trio with no call to make -- the lever that keeps call counts level. With a
  three-call loop everyone in the trio must ring whatever their history, and simulation showed
  counts drifting 2 apart.
* "Fewest calls rings" alone cannot keep counts within 1: after a round, two members who just
  rang may meet each other next round while two who did not also meet, and one of each pair must
  end up 2 apart. The way out is to choose, among equally fair callers now, the ones that leave
  next round's pairs mixed. ``calls_for_groups`` does this exactly (a small min-cost search over
  the groups, see ``_minimise``) when given ``next_groups``. With it, call counts stay within 1 of
  each other at every round (tested for 2..12 members, and among the others when one member is
  away every other round); with irregular absences it is best effort (a random simulation saw 2
  now and then). Without ``next_groups`` ties follow the round parity; counts then stayed
  within 2 in the tests.
* Members missing from ``history`` count as 0 calls, so they ring first until they catch up. To
  spare a newcomer or someone back from a long absence, pass a baseline count for them.
* Absence does not reshuffle the schedule (``absent`` instead of a shorter roster): the circle
  runs over the whole roster, so the members who are always there still meet everyone once per
  cycle. Passing a shorter roster to ``pairs_round`` also works, but every change in who takes part
  then starts a different circle.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import combinations, product
from typing import TypeVar

from phonetree.errors import PhonetreeError
from phonetree.trio_hosts import five_round

Group = tuple[str, ...]
Call = tuple[str, str]
# (look-ahead balance, distance from the default orientation): compared lexicographically.
Cost = tuple[int, int]

__all__ = [
    "Call",
    "Group",
    "PairingError",
    "balanced_members",
    "calls_for_groups",
    "pairs_round",
    "ring_round",
]


class PairingError(PhonetreeError, ValueError):
    """No grouping honours the do-not-pair rules (a ValueError, and shown to the organiser)."""


# --------------------------------------------------------------------------------------------
# Who takes part


def _check_unique(members: Sequence[str], what: str = "member") -> None:
    seen: set[str] = set()
    for name in members:
        if name in seen:
            raise ValueError(f"{what} {name!r} appears twice in the list")
        seen.add(name)


def balanced_members(all_members: Sequence[str], unavailable: Collection[str]) -> list[str]:
    """The members taking part this round, in roster order (order drives the rotations).

    Names in ``unavailable`` that are not on the roster are ignored: they cannot take part anyway.
    Fairness between those who take part is not decided here but by ``calls_for_groups`` from the
    call history, and for pair rotas prefer ``pairs_round(all_members, r, absent=unavailable)``,
    which keeps everyone else's place in the schedule.
    """
    _check_unique(all_members)
    away = set(unavailable)
    return [name for name in all_members if name not in away]


# --------------------------------------------------------------------------------------------
# Pairs: circle method, trio instead of a bye, do-not-pair repair


Slot = TypeVar("Slot")  # what fills the circle's slots: names here, numbers in trio_hosts


def _circle(slots: Sequence[Slot | None], round_index: int) -> list[tuple[Slot | None, Slot | None]]:
    """One round of the circle method over an even number of slots: slot 0 stays put, the others
    turn one place per round; the pairs are read off the two halves of the circle."""
    size = len(slots)
    turn = round_index % (size - 1)
    rest = list(slots[1:])
    if turn:
        rest = rest[-turn:] + rest[:-turn]
    ring = [slots[0], *rest]
    return [(ring[i], ring[size - 1 - i]) for i in range(size // 2)]


def _normalise_avoid(avoid: Iterable[Collection[str]]) -> set[frozenset[str]]:
    rules: set[frozenset[str]] = set()
    for entry in avoid:
        pair = frozenset(entry)
        if len(pair) != 2:
            raise ValueError(f"a do-not-pair rule must name two different members, got {sorted(pair)}")
        rules.add(pair)
    return rules


def pairs_round(
    members: Sequence[str],
    round_index: int,
    avoid: Iterable[Collection[str]] = (),
    absent: Collection[str] = (),
) -> list[Group]:
    """The groups for one round: pairs, plus one trio when an odd number take part.

    ``members`` is the whole roster in a stable order; ``absent`` are away this round.
    """
    _check_unique(members)
    away = set(absent)
    rules = _normalise_avoid(avoid)
    if len(members) - len(away & set(members)) < 2:
        return []  # nobody to talk to

    if len(members) == 5:
        pair, trio = five_round(round_index)
        planned = [[members[i] for i in pair], [members[i] for i in trio]]
        result = _without(planned, away)
        return _repair(result, rules) if rules else result

    # With an odd roster a phantom sits in the fixed slot, so every real member turns through
    # every place: each is the bye exactly once and in the trio's host pair twice per n rounds.
    slots: list[str | None] = [None, *members] if len(members) % 2 else list(members)
    circle = _circle(slots, round_index)

    # Keep intact pairs in their places; anyone whose partner is the phantom or away is an orphan.
    places: list[list[str] | None] = []
    orphans: list[str] = []
    for left, right in circle:
        here = [name for name in (left, right) if name is not None and name not in away]
        if len(here) == 2:
            places.append(here)
        else:
            places.append(None)
            orphans.extend(here)

    groups: list[list[str]] = [group for group in places if group is not None]
    groups.extend(orphans[i : i + 2] for i in range(0, len(orphans) - 1, 2))
    if len(orphans) % 2:
        # The odd one out joins a pair. The pair in circle place 1 moves round with the circle, so
        # the trio rotates; place 0 comes last because its left seat (the fixed member of an even
        # roster) never moves and would be in every trio.
        joiner = orphans[-1]
        order = list(range(1, len(places))) + [0]
        host = _planned_host(members, slots, round_index, joiner, places)
        if host is None:
            host = next((places[i] for i in order if places[i] is not None), None)
        if host is None:
            host = groups[0]  # every circle pair is broken: join the first orphan pair
        host.append(joiner)

    result = [tuple(group) for group in groups]
    return _repair(result, rules) if rules else result


def _without(planned: list[list[str]], away: set[str]) -> list[Group]:
    """A planned round with the absent taken out: groups that keep two or more stay as they are,
    and whoever is left alone pairs with another left alone, or joins a pair, or takes the last
    of a trio (so there is never more than one trio)."""
    groups = [[name for name in group if name not in away] for group in planned]
    kept = [group for group in groups if len(group) >= 2]
    alone = [group[0] for group in groups if len(group) == 1]
    kept.extend(alone[i : i + 2] for i in range(0, len(alone) - 1, 2))
    if len(alone) % 2:
        joiner = alone[-1]
        trio = next((group for group in kept if len(group) == 3), None)
        if trio is not None:
            kept.append([trio.pop(), joiner])
        else:
            kept[0].append(joiner)
    return [tuple(group) for group in kept]


def _planned_host(members: Sequence[str], slots: Sequence[str | None], round_index: int, joiner: str,
                  places: list[list[str] | None]) -> list[str] | None:
    """The pair the member with the bye joins in an odd roster, so that within the first n-1
    rounds of each cycle everyone meets everyone (see phonetree.trio_hosts); None when the
    plan doesn't apply this round (an even roster, or absences moved the pairs around)."""
    from phonetree.trio_hosts import host_pair

    if len(members) % 2 == 0:
        return None
    period = len(slots) - 1
    bye = next((b if a is None else a for a, b in _circle(slots, round_index) if None in (a, b)), None)
    if joiner != bye:
        return None
    planned = host_pair(len(members), round_index % period)
    if planned is None:
        return None
    wanted = members[planned[0]] if isinstance(planned, tuple) else members[planned]
    host = next((p for p in places if p is not None and wanted in p), None)
    if host is not None and isinstance(planned, tuple):
        order = [members[i] for i in planned]
        if sorted(order) == sorted(host):
            host[:] = order  # the order says who rings without a history (trio_hosts.orient)
    return host


def _forbidden_in(group: Sequence[str], rules: set[frozenset[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in combinations(group, 2) if frozenset((a, b)) in rules]


def _count_forbidden(groups: Sequence[Sequence[str]], rules: set[frozenset[str]]) -> int:
    return sum(len(_forbidden_in(group, rules)) for group in groups)


def _first_forbidden(groups: Sequence[Sequence[str]], rules: set[frozenset[str]]) -> tuple[int, tuple[str, str]]:
    """(index of the group, the pair) for the first forbidden pair in round order."""
    for index, group in enumerate(groups):
        found = _forbidden_in(group, rules)
        if found:
            return index, found[0]
    raise LookupError("no forbidden pair")


def _repair(groups: list[Group], rules: set[frozenset[str]]) -> list[Group]:
    """Remove do-not-pair matches with as little change to the circle round as possible.

    First, repeatedly swap a member of the first offending pair with a member of another group,
    taking the swap that leaves fewest offending pairs (first found on a tie, so deterministic)
    while that number keeps falling. If swaps get stuck (several rules interacting), search all
    groupings of the same shape; only if none exists is the round impossible.
    """
    work = [list(group) for group in groups]
    bad = _count_forbidden(work, rules)
    while bad:
        at, (x, y) = _first_forbidden(work, rules)
        best: tuple[int, int, int, int] | None = None  # (remaining, seat in work[at], other group, seat)
        for u in (x, y):
            seat = work[at].index(u)
            for other, group in enumerate(work):
                if other == at:
                    continue
                for their_seat in range(len(group)):
                    work[at][seat], group[their_seat] = group[their_seat], work[at][seat]
                    remaining = _count_forbidden(work, rules)
                    work[at][seat], group[their_seat] = group[their_seat], work[at][seat]
                    if best is None or remaining < best[0]:
                        best = (remaining, seat, other, their_seat)
        if best is None or best[0] >= bad:
            break
        _, seat, other, their_seat = best
        work[at][seat], work[other][their_seat] = work[other][their_seat], work[at][seat]
        bad = best[0]
    if not bad:
        return [tuple(group) for group in work]

    found = _search_grouping(work, rules)
    if found is None:
        _, (a, b) = _first_forbidden(groups, rules)
        count = sum(len(g) for g in groups)
        raise PairingError(
            f"Can't keep {a} and {b} apart: with the do-not-pair rules there is no way to group "
            f"the {count} members taking part this round. Remove a do-not-pair rule or add members."
        )
    return found


def _search_grouping(groups: list[list[str]], rules: set[frozenset[str]]) -> list[Group] | None:
    """Any grouping of the same shape (pairs, plus a trio if there is one) with no forbidden pair.

    Depth-first, taking the member with fewest allowed partners first (so impossible cases fail
    fast) and trying their current partners first; failed sub-problems are remembered, so the
    work is bounded by the number of subsets, not of orderings.
    """
    order = [name for group in groups for name in group]
    rank = {name: i for i, name in enumerate(order)}
    partner_of = {name: set(group) - {name} for group in groups for name in group}
    needs_trio = any(len(group) == 3 for group in groups)
    failed: set[tuple[frozenset[str], bool]] = set()

    def ok(*names: str) -> bool:
        return all(frozenset(p) not in rules for p in combinations(names, 2))

    def solve(left: frozenset[str], trio: bool) -> list[Group] | None:
        if not left:
            return [] if not trio else None
        if (left, trio) in failed:
            return None

        def preference(v: str, u: str) -> tuple[int, int]:
            return (v not in partner_of[u], rank[v])

        u = min(left, key=lambda m: (sum(ok(m, v) for v in left if v != m), rank[m]))
        others = sorted((v for v in left if v != u and ok(u, v)), key=lambda v: preference(v, u))
        options: list[Group] = []
        if not trio or len(left) > 3:
            options += [(u, v) for v in others]
        if trio:
            options += [(u, v, w) for v, w in combinations(others, 2) if ok(v, w)]
        for group in options:
            rest = solve(left - set(group), trio and len(group) == 2)
            if rest is not None:
                return [group, *rest]
        failed.add((left, trio))
        return None

    found = solve(frozenset(order), needs_trio)
    if found is None:
        return None
    # Present the groups, and the names within them, in the round's original order.
    ordered = [tuple(sorted(group, key=rank.__getitem__)) for group in found]
    return sorted(ordered, key=lambda group: rank[group[0]])


# --------------------------------------------------------------------------------------------
# Who rings whom within the groups


def _options(group: Group, round_index: int) -> list[list[Call]]:
    """Every way the group can make its calls, the default (round-parity) way first."""
    even = round_index % 2 == 0
    if len(group) == 2:
        a, b = group
        return [[(a, b)], [(b, a)]] if even else [[(b, a)], [(a, b)]]
    if len(group) != 3:
        raise ValueError(f"a group is a pair or a trio, got {group!r}")
    # A trio is a chain x -> y -> end: the 'end' member is rung but makes no call this round.
    default_end = group[2] if even else group[0]
    ends = [default_end, *(m for m in group if m != default_end)]
    chains: list[list[Call]] = []
    for end in ends:
        x, y = [m for m in group if m != end]
        if not even:
            x, y = y, x
        chains.append([(x, y), (y, end)])
    return chains


def _callers(calls: Sequence[Call]) -> set[str]:
    return {caller for caller, _ in calls}


def _fair_options(group: Group, options: list[list[Call]], counts: Mapping[str, int]) -> list[int]:
    """Indexes of the options in which those who have made the fewest calls do the calling:
    in a pair the lower count rings; in a trio the member left without a call has the most."""
    if len(group) == 2:
        low = min(counts[m] for m in group)
        return [i for i, o in enumerate(options) if counts[o[0][0]] == low]
    high = max(counts[m] for m in group)
    return [i for i, o in enumerate(options) if all(counts[m] == high for m in set(group) - _callers(o))]


def calls_for_groups(
    groups: Sequence[Group],
    round_index: int,
    history: Mapping[str, int] | None = None,
    next_groups: Sequence[Group] | None = None,
) -> list[Call]:
    """Who rings whom: one call per pair, a chain of two per trio (see the module docstring).

    ``history`` maps member -> calls made so far (missing = 0). ``next_groups`` is the next round's
    grouping as far as it is known (e.g. ``pairs_round(..., round_index + 1, ...)``); it is used
    only to break ties fairly and may be omitted.
    """
    _check_unique([m for group in groups for m in group])
    all_options = [_options(tuple(group), round_index) for group in groups]
    if history is None:
        # No history: alternate by round parity. Round r and r + cycle length have opposite
        # parity, so over two full cycles everyone makes exactly the same number of calls.
        return [call for options in all_options for call in options[0]]

    present = {m for group in groups for m in group}
    upcoming = [tuple(g) for g in next_groups or ()]
    counts = {m: history.get(m, 0) for m in present | {m for g in upcoming for m in g}}
    fair = [_fair_options(tuple(g), opts, counts) for g, opts in zip(groups, all_options)]

    # Variables: one per group, ranging over its fair options. Unary cost: leaving the default.
    factors: list[tuple[tuple[int, ...], dict[tuple[int, ...], Cost]]] = [
        ((gi,), {(k,): (0, 0 if choice == 0 else 1) for k, choice in enumerate(choices)})
        for gi, choices in enumerate(fair)
    ]
    # Look-ahead: for each next-round group, the sum of squared call counts (among members taking
    # part in both rounds) after it too has been fair, for every combination of choices now.
    # Lower means more even; the next round can then close the gap this one opens.
    group_of = {m: gi for gi, group in enumerate(groups) for m in group}
    for next_group in upcoming:
        core = [m for m in next_group if m in present]
        if not core:
            continue
        scope = tuple(sorted({group_of[m] for m in core}))

        def outcome(assignment: tuple[int, ...], ng: Group = next_group, sc: tuple[int, ...] = scope) -> Cost:
            rang = set().union(*(_callers(all_options[g][fair[g][k]]) for g, k in zip(sc, assignment)))
            after = {m: counts[m] + (m in rang) for m in ng}
            ng_options = _options(ng, round_index + 1)
            best = min(
                sum((after[m] + (m in _callers(ng_options[i]))) ** 2 for m in ng if m in present)
                for i in _fair_options(ng, ng_options, after)
            )
            return (best, 0)

        table = {assignment: outcome(assignment) for assignment in product(*(range(len(fair[g])) for g in scope))}
        factors.append((scope, table))

    choice = _minimise([len(choices) for choices in fair], factors)
    return [call for gi, options in enumerate(all_options) for call in options[fair[gi][choice[gi]]]]


def _add(a: Cost, b: Cost) -> Cost:
    return (a[0] + b[0], a[1] + b[1])


def _minimise(
    domains: list[int], factors: list[tuple[tuple[int, ...], dict[tuple[int, ...], Cost]]]
) -> list[int]:
    """Exact minimum of a sum of small cost tables, by variable elimination.

    The groups of two consecutive rounds link up into chains and loops (each member is in one
    group now and one next round), so eliminating the least-connected variable first keeps every
    intermediate table tiny (a few entries) instead of trying every combination of choices,
    which would double with each pair: a 50-member round takes milliseconds.
    Ties go to the lower option number, i.e. towards the default orientation.
    """
    live = list(factors)
    remaining = set(range(len(domains)))
    steps: list[tuple[int, tuple[int, ...], dict[tuple[int, ...], int]]] = []
    while remaining:
        def degree(v: int) -> tuple[int, int]:
            return (len({u for scope, _ in live if v in scope for u in scope} - {v}), v)

        var = min(remaining, key=degree)
        remaining.discard(var)
        touching = [f for f in live if var in f[0]]
        live = [f for f in live if var not in f[0]]
        scope = tuple(sorted({u for s, _ in touching for u in s} - {var}))
        table: dict[tuple[int, ...], Cost] = {}
        best_value: dict[tuple[int, ...], int] = {}
        for assignment in product(*(range(domains[u]) for u in scope)):
            env = dict(zip(scope, assignment))
            best: Cost | None = None
            for value in range(domains[var]):
                env[var] = value
                total: Cost = (0, 0)
                for s, t in touching:
                    total = _add(total, t[tuple(env[u] for u in s)])
                if best is None or total < best:
                    best, best_value[assignment] = total, value
            assert best is not None
            table[assignment] = best
        live.append((scope, table))
        steps.append((var, scope, best_value))

    chosen: dict[int, int] = {}
    for var, scope, best_value in reversed(steps):
        chosen[var] = best_value[tuple(chosen[u] for u in scope)]
    return [chosen[v] for v in range(len(domains))]


# --------------------------------------------------------------------------------------------
# Rings


def _walecki(members: Sequence[str], round_index: int) -> list[str]:
    """Ring order for an odd number (>= 3) of members, by Walecki's construction.

    The last member is the hub; the others sit on a circle and cycle k visits them in a zigzag
    k, k+1, k-1, k+2, k-2, ... The (n-1)/2 zigzag cycles share no edge and together cover every
    pair, and each is used forwards then backwards, so over n-1 rounds every member rings every
    other member exactly once, and no one rings the same person two rounds running.
    """
    n = len(members)
    half = (n - 1) // 2
    circle = members[:-1]
    k = (round_index // 2) % half
    seq = [k]
    for t in range(1, half + 1):
        seq.append((k + t) % (n - 1))
        if t < half:
            seq.append((k - t) % (n - 1))
    order = [members[-1], *(circle[i] for i in seq)]
    return order[::-1] if round_index % 2 else order


def ring_round(members: Sequence[str], round_index: int) -> list[Call]:
    """Each member rings the next in this round's ring order, the last rings the first.

    Every round is one cycle through everyone (news passed along reaches all), each member rings
    exactly one and is rung by exactly one, and from one round to the next everyone's callee
    changes (n >= 3). Two members: one call, direction alternating by round. Fewer: no calls.
    """
    _check_unique(members)
    n = len(members)
    if n < 2:
        return []
    if n == 2:
        a, b = members
        return [(a, b)] if round_index % 2 == 0 else [(b, a)]
    if n % 2:
        order = _walecki(members, round_index)
    else:
        # Even: run the odd construction over all but the last member and slot the last member in.
        # The slot moves two places each time the underlying cycle changes and, within the
        # forwards/backwards pair of rounds, stays on the same link, so the added member's callee
        # and caller both change every round. This placement was found by checking every even n
        # up to 60 (some simpler ones repeat a callee for some n); the tests check n up to 30.
        forwards = _walecki(members[:-1], (round_index // 2) * 2)
        k = (round_index // 2) % ((n - 2) // 2)
        slot = (2 * k + 3) % (n - 1)
        order = [*forwards[: slot + 1], members[-1], *forwards[slot + 1 :]]
        if round_index % 2:
            order.reverse()
    return [(order[i], order[(i + 1) % n]) for i in range(n)]
