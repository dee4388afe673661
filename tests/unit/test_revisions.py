"""LocalRevisions: the floors below which watched documents are stale (``osfs.core.revisions``).

Rules for these tests:
1. Each rule of the module is checked at its edges: a floor is the highest revision noted for a
   name (revisions <= 0 are no change at all), a document is stale at the floor and below it,
   never above it, and ``passed(R)`` forgets exactly the floors at or below R.
2. A property test runs random sequences against a naive model that keeps every note as it was
   made: a document of ``name`` at revision ``v`` is stale exactly when some note of ``name``
   at a revision >= v is still remembered, a note being forgotten by the first ``passed(p)``
   with ``p`` >= its revision that follows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.meta import ObjectInfo
from osfs.core.revisions import LocalRevisions


def doc(name: str, revision: int, *, deleted: bool = False) -> ObjectInfo:
    return ObjectInfo(name=name, bucket="b", nuid="N", revision=revision, deleted=deleted)


# Rule 1: note ---------------------------------------------------------------------------------


def test_a_fresh_table_finds_nothing_stale() -> None:
    local = LocalRevisions()
    assert len(local) == 0
    assert not local.is_stale(doc("a", 1))
    assert not local.is_stale(doc("a", 0))


def test_a_note_makes_its_name_stale_up_to_its_revision() -> None:
    local = LocalRevisions()
    local.note("a", 7)
    assert len(local) == 1
    assert local.is_stale(doc("a", 1))
    assert local.is_stale(doc("a", 6))
    assert local.is_stale(doc("a", 7))  # the echo of the change itself
    assert not local.is_stale(doc("a", 8))  # anything newer is news


def test_notes_are_per_name() -> None:
    local = LocalRevisions()
    local.note("a", 7)
    local.note("a/", 9)
    assert not local.is_stale(doc("b", 1))
    assert not local.is_stale(doc("a/b", 1))
    assert not local.is_stale(doc("a/", 10))
    assert local.is_stale(doc("a/", 9))
    assert not local.is_stale(doc("a", 8))
    assert len(local) == 2


def test_a_later_note_of_a_lower_revision_keeps_the_floor() -> None:
    local = LocalRevisions()
    local.note("a", 10)
    local.note("a", 4)
    assert local.is_stale(doc("a", 10))
    assert not local.is_stale(doc("a", 11))
    local.note("a", 12)
    assert local.is_stale(doc("a", 12))
    assert len(local) == 1


def test_revisions_of_zero_or_below_note_nothing() -> None:
    local = LocalRevisions()
    local.note("pending", 0)  # a pending file's local document
    local.note("weird", -3)
    assert len(local) == 0
    assert not local.is_stale(doc("pending", 0))
    assert not local.is_stale(doc("weird", -5))
    # ...nor do they raise the level at which passed() clears everything.
    local.note("a", 5)
    local.passed(1)
    assert local.is_stale(doc("a", 5))


# Rule 2: is_stale -----------------------------------------------------------------------------


def test_delete_markers_are_judged_by_revision_like_any_document() -> None:
    local = LocalRevisions()
    local.note("a", 5)
    assert local.is_stale(doc("a", 5, deleted=True))
    assert not local.is_stale(doc("a", 6, deleted=True))


def test_is_stale_changes_nothing() -> None:
    local = LocalRevisions()
    local.note("a", 5)
    for _ in range(3):
        assert local.is_stale(doc("a", 5))
    assert len(local) == 1


# Rule 3: passed -------------------------------------------------------------------------------


def test_passed_forgets_the_notes_at_or_below_it_and_keeps_the_rest() -> None:
    local = LocalRevisions()
    local.note("a", 3)
    local.note("b", 5)
    local.note("c", 8)
    local.passed(5)
    assert len(local) == 1
    assert not local.is_stale(doc("a", 3))
    assert not local.is_stale(doc("b", 5))
    assert local.is_stale(doc("c", 8))
    local.passed(7)
    assert local.is_stale(doc("c", 8))
    local.passed(8)
    assert len(local) == 0
    assert not local.is_stale(doc("c", 8))


def test_passed_at_or_above_the_highest_note_clears_everything() -> None:
    local = LocalRevisions()
    local.note("a", 3)
    local.note("b", 9)
    local.passed(100)
    assert len(local) == 0
    assert not local.is_stale(doc("b", 1))
    # Notes made afterwards count again, including ones below the revision passed.
    local.note("c", 4)
    assert local.is_stale(doc("c", 4))
    local.passed(3)
    assert local.is_stale(doc("c", 4))
    local.passed(4)
    assert len(local) == 0


def test_passed_of_zero_or_below_and_on_an_empty_table_do_nothing() -> None:
    local = LocalRevisions()
    local.passed(10)  # nothing noted: nothing to forget
    local.note("a", 1)
    local.passed(0)
    local.passed(-1)
    assert local.is_stale(doc("a", 1))
    assert len(local) == 1


def test_a_note_survives_a_passed_that_came_before_it() -> None:
    local = LocalRevisions()
    local.note("a", 9)
    local.passed(9)
    local.note("a", 6)  # e.g. a rename noted at a revision the watch already passed
    assert local.is_stale(doc("a", 6))
    assert not local.is_stale(doc("a", 7))


# A model --------------------------------------------------------------------------------------

NAMES = ("a", "b", "c")


@dataclass
class Model:
    """Every note made, and whether a later ``passed`` forgot it."""

    notes: list[tuple[str, int]] = field(default_factory=list)

    def note(self, name: str, revision: int) -> None:
        if revision > 0:
            self.notes.append((name, revision))

    def passed(self, revision: int) -> None:
        if revision > 0:
            self.notes = [(name, r) for name, r in self.notes if r > revision]

    def is_stale(self, name: str, revision: int) -> bool:
        return any(n == name and r >= revision for n, r in self.notes)

    def size(self) -> int:
        return len({name for name, _ in self.notes})


revisions = st.integers(min_value=-1, max_value=12)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("note"), st.sampled_from(NAMES), revisions),
        st.tuples(st.just("passed"), st.just(""), revisions),
        st.tuples(st.just("check"), st.sampled_from(NAMES), revisions),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_local_revisions_match_the_model(script: list[tuple[str, str, int]]) -> None:
    local, model = LocalRevisions(), Model()
    for action, name, revision in script:
        if action == "note":
            local.note(name, revision)
            model.note(name, revision)
        elif action == "passed":
            local.passed(revision)
            model.passed(revision)
        else:
            assert local.is_stale(doc(name, revision)) == model.is_stale(name, revision)
        assert len(local) == model.size()
        for other in NAMES:
            for probe in range(14):
                assert local.is_stale(doc(other, probe)) == model.is_stale(other, probe), (
                    other,
                    probe,
                )
