"""Pairing, calling duty and rings: the rota's pure arithmetic, checked over whole cycles."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from itertools import combinations

import pytest

from phonetree.pairing import (
    Call,
    Group,
    PairingError,
    balanced_members,
    calls_for_groups,
    pairs_round,
    ring_round,
)
from phonetree.trio_hosts import FIVE_CYCLE

SIZES = range(2, 13)


def roster(n: int) -> list[str]:
    return [f"m{i:02d}" for i in range(n)]


def cycle_length(n: int) -> int:
    """Rounds until the rota repeats: n - 1 with an even roster, n with an odd one, 20 for five
    (five blocks of four rounds, phonetree.trio_hosts.five_round)."""
    if n == 5:
        return FIVE_CYCLE
    return n - 1 if n % 2 == 0 else n


def meetings(groups: Sequence[Group]) -> list[frozenset[str]]:
    return [frozenset(p) for group in groups for p in combinations(group, 2)]


def assert_partition(groups: Sequence[Group], expected: Collection[str]) -> None:
    """Everyone taking part is in exactly one group; pairs only, plus one trio iff odd."""
    names = [m for group in groups for m in group]
    assert sorted(names) == sorted(expected)
    sizes = Counter(len(group) for group in groups)
    assert set(sizes) <= {2, 3}
    assert sizes[3] == (1 if len(expected) % 2 and len(expected) > 1 else 0)


# ------------------------------------------------------------------------------------------
# pairs_round: the circle method


@pytest.mark.parametrize("n", SIZES)
def test_every_pair_meets_within_one_cycle_and_exactly_once_when_even(n: int) -> None:
    members = roster(n)
    met = Counter(p for r in range(cycle_length(n)) for p in meetings(pairs_round(members, r)))
    everyone = {frozenset(p) for p in combinations(members, 2)}
    assert set(met) == everyone
    if n % 2 == 0:
        assert set(met.values()) == {1}


@pytest.mark.parametrize("n", SIZES)
def test_nobody_is_left_out_and_a_trio_only_with_an_odd_roster(n: int) -> None:
    members = roster(n)
    for r in range(2 * cycle_length(n)):
        assert_partition(pairs_round(members, r), members)


@pytest.mark.parametrize("n", SIZES)
def test_rounds_repeat_after_a_full_cycle(n: int) -> None:
    members = roster(n)
    length = cycle_length(n)
    for r in range(length):
        assert pairs_round(members, r + length) == pairs_round(members, r)
    if n > 3:  # the cycle is not shorter than claimed
        assert len({tuple(pairs_round(members, r)) for r in range(length)}) == length


def test_five_the_trio_rotates_fairly_over_its_cycle() -> None:
    # Five can't have everyone in three trios of five rounds and meet everyone in four (see
    # phonetree.trio_hosts): over its 20-round cycle everyone is in the trio twelve times, is
    # in the pair for one block of four rounds, and the trio never stays the same three.
    members = roster(5)
    rounds = [pairs_round(members, r) for r in range(FIVE_CYCLE)]
    trios = [next(g for g in groups if len(g) == 3) for groups in rounds]
    pairs = [next(g for g in groups if len(g) == 2) for groups in rounds]
    assert Counter(m for trio in trios for m in trio) == {m: 12 for m in members}
    assert Counter(m for pair in pairs for m in pair) == {m: 8 for m in members}
    for position in range(3):
        assert Counter(trio[position] for trio in trios) == {m: 4 for m in members}
    for this, following in zip(trios, trios[1:] + trios[:1]):
        assert set(this) != set(following)
    for block in range(0, FIVE_CYCLE, 4):
        met = Counter(p for groups in rounds[block : block + 4] for p in meetings(groups))
        assert len(met) == 10 and max(met.values()) == 2


@pytest.mark.parametrize("n", [7, 9, 11])
def test_the_trio_rotates_fairly(n: int) -> None:
    members = roster(n)
    trios = [next(g for g in pairs_round(members, r) if len(g) == 3) for r in range(n)]
    # Over one cycle everyone is in the trio three times and is the one joining it once.
    assert Counter(m for trio in trios for m in trio) == {m: 3 for m in members}
    assert sorted(trio[2] for trio in trios) == members
    # And it never stays with the same three people two rounds running.
    for this, following in zip(trios, trios[1:] + trios[:1]):
        assert set(this) != set(following)


def test_tiny_rosters() -> None:
    assert pairs_round([], 0) == []
    assert pairs_round(["ann"], 3) == []
    assert all(pairs_round(["ann", "bob"], r) == [("ann", "bob")] for r in range(5))
    assert all(set(pairs_round(["ann", "bob", "cat"], r)[0]) == {"ann", "bob", "cat"} for r in range(5))


def test_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        pairs_round(["ann", "bob", "ann"], 0)


# ------------------------------------------------------------------------------------------
# pairs_round: absence keeps everybody else's schedule


@pytest.mark.parametrize("n", range(3, 13))
def test_an_absent_member_leaves_the_others_schedule_intact(n: int) -> None:
    members = roster(n)
    away = members[n // 2]
    others = [m for m in members if m != away]
    met: Counter[frozenset[str]] = Counter()
    for r in range(cycle_length(n)):
        groups = pairs_round(members, r, absent={away})
        assert_partition(groups, others)
        met.update(meetings(groups))
        # Every pair the full circle scheduled between two people who are here still happens.
        for scheduled in pairs_round(members, r):
            if away not in scheduled and len(scheduled) == 2:
                assert any(set(scheduled) <= set(g) for g in groups)
    assert set(met) == {frozenset(p) for p in combinations(others, 2)}


def test_absence_down_to_one_or_none() -> None:
    members = roster(4)
    assert pairs_round(members, 1, absent=members[1:]) == []
    assert pairs_round(members, 1, absent=members) == []
    assert_partition(pairs_round(members, 2, absent=members[:2]), members[2:])


# ------------------------------------------------------------------------------------------
# pairs_round: do-not-pair


AVOID_CASES = [
    (4, [("m00", "m01")]),
    (5, [("m00", "m04")]),
    # m03 may only be with m02: single swaps get stuck here and the full search is needed.
    (5, [("m03", "m00"), ("m03", "m01"), ("m03", "m04")]),
    (6, [("m00", "m05"), ("m01", "m04")]),
    (7, [("m02", "m03"), ("m02", "m04")]),
    (8, [("m00", "m07"), ("m01", "m06"), ("m02", "m05")]),
    (9, [("m00", "m01"), ("m00", "m02"), ("m00", "m03")]),
    (11, [("m03", "m04"), ("m05", "m06"), ("m07", "m08")]),
    (12, [("m00", "m11"), ("m05", "m06"), ("m00", "m06")]),
]


@pytest.mark.parametrize(("n", "rules"), AVOID_CASES)
def test_do_not_pair_is_honoured_in_every_round(n: int, rules: list[tuple[str, str]]) -> None:
    members = roster(n)
    avoid = [frozenset(rule) for rule in rules]
    repaired = 0
    for r in range(cycle_length(n)):
        plain = pairs_round(members, r)
        groups = pairs_round(members, r, avoid)
        assert_partition(groups, members)
        assert not set(meetings(groups)) & set(avoid)
        assert groups == pairs_round(members, r, avoid)  # deterministic
        if set(meetings(plain)) & set(avoid):
            repaired += 1
            if len(rules) == 1:  # one rule: one swap between two groups, the rest untouched
                assert len(set(plain) - set(groups)) == 2
        else:
            assert groups == plain  # nothing to repair, nothing changed
    assert repaired  # every pair meets once a cycle, so some round needed repairing


def test_the_only_possible_grouping_is_found() -> None:
    # Each member may be paired with exactly one other: the search must find that matching.
    members = roster(6)
    allowed = {frozenset(("m00", "m03")), frozenset(("m01", "m05")), frozenset(("m02", "m04"))}
    avoid = [frozenset(p) for p in combinations(members, 2) if frozenset(p) not in allowed]
    for r in range(5):
        assert {frozenset(g) for g in pairs_round(members, r, avoid)} == allowed


@pytest.mark.parametrize(
    ("members", "rules"),
    [
        (["ann", "bob"], [("ann", "bob")]),
        (["ann", "bob", "cat"], [("bob", "cat")]),  # three must be one trio
        (["ann", "bob", "cat", "dan"], [("ann", "bob"), ("ann", "cat"), ("ann", "dan")]),
        # ann can only be with eve, which leaves bob, cat and dan as the trio: but cat and dan
        (["ann", "bob", "cat", "dan", "eve"], [("ann", "bob"), ("ann", "cat"), ("ann", "dan"), ("cat", "dan")]),
    ],
)
def test_impossible_do_not_pair_is_an_error_naming_the_pair(members: list[str], rules: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="Can't keep") as raised:
        pairs_round(members, 0, [frozenset(rule) for rule in rules])
    assert isinstance(raised.value, PairingError)  # so the CLI shows it to the organiser
    message = str(raised.value)
    assert any(f"{a} and {b}" in message or f"{b} and {a}" in message for a, b in rules)


def test_impossible_message_names_the_forbidden_pair() -> None:
    with pytest.raises(PairingError, match="Can't keep ann and bob apart"):
        pairs_round(["ann", "bob"], 0, [frozenset({"ann", "bob"})])


def test_rules_about_people_not_taking_part_are_ignored_and_bad_rules_refused() -> None:
    members = roster(4)
    assert pairs_round(members, 0, [frozenset({"m00", "zed"})]) == pairs_round(members, 0)
    with pytest.raises(ValueError, match="two different members"):
        pairs_round(members, 0, [frozenset({"m00"})])


# ------------------------------------------------------------------------------------------
# calls_for_groups


def assert_calls_fit(groups: Sequence[Group], calls: Sequence[Call]) -> None:
    """A pair makes one call between its two; a trio makes a chain of two reaching all three."""
    for group in groups:
        inside = [c for c in calls if c[0] in group]
        assert all(callee in group and callee != caller for caller, callee in inside)
        assert len(inside) == len(group) - 1
        assert {m for call in inside for m in call} == set(group)
        assert len({caller for caller, _ in inside}) == len(inside)  # nobody rings twice
    assert len(calls) == sum(len(g) - 1 for g in groups)


@pytest.mark.parametrize("n", SIZES)
def test_without_history_callers_alternate_and_even_out_over_two_cycles(n: int) -> None:
    members = roster(n)
    made: Counter[str] = Counter()
    for r in range(2 * cycle_length(n)):
        groups = pairs_round(members, r)
        calls = calls_for_groups(groups, r)
        assert_calls_fit(groups, calls)
        made.update(caller for caller, _ in calls)
        # The same pair in the next round would ring the other way.
        flipped = calls_for_groups(groups, r + 1)
        for group in groups:
            if len(group) == 2:
                assert [c for c in calls if c[0] in group] == [c[::-1] for c in flipped if c[0] in group]
    assert len(set(made[m] for m in members)) == 1


def simulate(
    members: list[str],
    rounds: int,
    away_in: Callable[[int], set[str]],
    lookahead: bool = True,
) -> list[dict[str, int]]:
    """Run the rota as the rota module would; return the call counts after each round."""
    history = {m: 0 for m in members}
    after: list[dict[str, int]] = []
    for r in range(rounds):
        groups = pairs_round(members, r, absent=away_in(r))
        upcoming = pairs_round(members, r + 1, absent=away_in(r + 1)) if lookahead else None
        calls = calls_for_groups(groups, r, history, upcoming)
        assert_calls_fit(groups, calls)
        assert not {m for c in calls for m in c} & away_in(r)
        for caller, _ in calls:
            history[caller] += 1
        after.append(dict(history))
    return after


def spread(counts: dict[str, int], among: Collection[str]) -> int:
    return max(counts[m] for m in among) - min(counts[m] for m in among)


@pytest.mark.parametrize("n", SIZES)
def test_calling_duty_stays_within_one_every_round(n: int) -> None:
    members = roster(n)
    counts = simulate(members, 3 * cycle_length(n) + 1, lambda r: set())
    assert all(spread(c, members) <= 1 for c in counts)
    assert counts[-1][members[0]] > 0


@pytest.mark.parametrize("n", range(3, 13))
@pytest.mark.parametrize("which", [0, 1, -1])
def test_fair_with_one_member_away_every_other_round(n: int, which: int) -> None:
    members = roster(n)
    skipped = members[which]
    always = [m for m in members if m != skipped]
    counts = simulate(members, 3 * cycle_length(n) + 2, lambda r: {skipped} if r % 2 else set())
    assert all(spread(c, always) <= 1 for c in counts)
    assert counts[-1][skipped] > 0  # when they are there, they take their turn too


@pytest.mark.parametrize("n", range(3, 13))
def test_fair_when_the_roster_itself_shrinks_every_other_round(n: int) -> None:
    # The other way to skip someone: a shorter roster from balanced_members.
    members = roster(n)
    skipped = members[n // 2]
    always = [m for m in members if m != skipped]

    def here(r: int) -> list[str]:
        return balanced_members(members, {skipped} if r % 2 else set())

    history = {m: 0 for m in members}
    for r in range(3 * n):
        calls = calls_for_groups(pairs_round(here(r), r), r, history, pairs_round(here(r + 1), r + 1))
        for caller, _ in calls:
            history[caller] += 1
        assert spread(history, always) <= 1


def test_whoever_has_made_fewer_calls_rings() -> None:
    for r in range(2):
        assert calls_for_groups([("ann", "bob")], r, {"ann": 3, "bob": 1}) == [("bob", "ann")]
        assert calls_for_groups([("ann", "bob")], r, {"bob": 2}) == [("ann", "bob")]  # missing = 0
        # In a trio the member with most calls is the one who is rung but does not ring.
        trio = calls_for_groups([("ann", "bob", "cat")], r, {"ann": 1, "bob": 5, "cat": 1})
        assert {caller for caller, _ in trio} == {"ann", "cat"}
        assert trio[1][1] == "bob"


def test_ties_are_broken_so_the_next_round_can_even_up() -> None:
    groups: list[Group] = [("ann", "bob"), ("cat", "dan")]
    following: list[Group] = [("ann", "cat"), ("bob", "dan")]
    zero = dict.fromkeys(["ann", "bob", "cat", "dan"], 0)
    for r in range(4):
        callers = {caller for caller, _ in calls_for_groups(groups, r, zero, following)}
        # One caller in each of next round's pairs, so next round everyone can reach 1 call.
        assert all(len(callers & set(pair)) == 1 for pair in following)


def test_without_look_ahead_counts_still_stay_close() -> None:
    # Ties fall back to the round's parity: not always within 1, but never drifting further.
    for n in SIZES:
        members = roster(n)
        counts = simulate(members, 4 * cycle_length(n), lambda r: set(), lookahead=False)
        assert all(spread(c, members) <= 2 for c in counts)


def test_groups_must_be_pairs_or_trios() -> None:
    with pytest.raises(ValueError, match="pair or a trio"):
        calls_for_groups([("ann", "bob", "cat", "dan")], 0)
    with pytest.raises(ValueError, match="twice"):
        calls_for_groups([("ann", "bob"), ("bob", "cat")], 0)


# ------------------------------------------------------------------------------------------
# ring_round


def callees(calls: Sequence[Call]) -> dict[str, str]:
    return dict(calls)


@pytest.mark.parametrize("n", range(3, 31))
def test_every_ring_is_one_cycle_through_everyone(n: int) -> None:
    members = roster(n)
    for r in range(3 * n):
        calls = ring_round(members, r)
        assert sorted(caller for caller, _ in calls) == members  # each rings exactly one
        assert sorted(callee for _, callee in calls) == members  # each is rung by exactly one
        assert all(caller != callee for caller, callee in calls)
        nxt = callees(calls)
        seen, at = [members[0]], nxt[members[0]]
        while at != members[0]:
            seen.append(at)
            at = nxt[at]
        assert len(seen) == n  # a single cycle, so news passed along reaches everyone


@pytest.mark.parametrize("n", range(3, 31))
def test_everyones_callee_changes_every_round(n: int) -> None:
    members = roster(n)
    # Three times the longest period (n - 1 rounds odd, n - 2 even), so the wrap-around is covered.
    rings = [callees(ring_round(members, r)) for r in range(3 * n)]
    for this, following in zip(rings, rings[1:]):
        assert all(this[m] != following[m] for m in members)


@pytest.mark.parametrize("n", [3, 5, 7, 9, 11, 13])
def test_odd_rings_have_everyone_ring_everyone_once_per_cycle(n: int) -> None:
    members = roster(n)
    rung = Counter(call for r in range(n - 1) for call in ring_round(members, r))
    assert set(rung) == {(a, b) for a in members for b in members if a != b}
    assert set(rung.values()) == {1}


@pytest.mark.parametrize("n", [4, 6, 8, 10, 12])
def test_even_rings_vary_who_rings_whom(n: int) -> None:
    members = roster(n)
    rung: dict[str, set[str]] = {m: set() for m in members}
    for r in range(n - 2):
        for caller, callee in ring_round(members, r):
            rung[caller].add(callee)
    # Each rings n - 2 times per cycle; at least half the group are different people.
    assert all(len(people) >= n // 2 for people in rung.values())


def test_tiny_rings() -> None:
    assert ring_round([], 0) == []
    assert ring_round(["ann"], 0) == []
    assert ring_round(["ann", "bob"], 0) == [("ann", "bob")]
    assert ring_round(["ann", "bob"], 1) == [("bob", "ann")]
    assert ring_round(["ann", "bob"], 2) == [("ann", "bob")]


# ------------------------------------------------------------------------------------------
# balanced_members


def test_balanced_members_keeps_roster_order() -> None:
    members = ["zoe", "ann", "mo", "bea"]
    assert balanced_members(members, {"ann", "bea"}) == ["zoe", "mo"]
    assert balanced_members(members, {"nobody"}) == members
    assert balanced_members(members, set(members)) == []
    with pytest.raises(ValueError, match="twice"):
        balanced_members(["ann", "ann"], set())
