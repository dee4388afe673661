"""What ``osfs fsck`` concludes from a bucket's documents and chunk subjects (osfs.core.fsck).

Rules for these tests:
1. One test per rule of the module: orphans (1), damaged objects (2), hidden names (3),
   unreadable documents (4); inputs are written by hand as the server would report them.
2. The property: every nuid that holds chunks is either owned by a live non-link object or an
   orphan, never both and never neither, whatever mix of objects, links and deletes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.fsck import Damaged, classify
from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.core.names import (
    MAX_COMPONENT_BYTES,
    REASON_DOT,
    REASON_EMPTY_COMPONENT,
    REASON_NUL,
    REASON_TOO_LONG,
)

BUCKET = "b"


def obj(name: str, nuid: str, chunks: int, *, deleted: bool = False) -> ObjectInfo:
    return ObjectInfo(name=name, bucket=BUCKET, nuid=nuid, chunks=chunks, deleted=deleted)


def link(name: str, nuid: str, target: str, *, bucket: str = BUCKET) -> ObjectInfo:
    return ObjectInfo(name=name, bucket=BUCKET, nuid=nuid, link=ObjectLink(bucket, target))


# Rule 1: orphans ---------------------------------------------------------------------------------


def test_a_clean_bucket_has_no_findings() -> None:
    infos = [obj("a", "N1", 2), obj("b", "N2", 1), obj("empty", "N3", 0)]
    findings = classify(infos, {"N1": 2, "N2": 1}, bucket=BUCKET)
    assert findings.objects == 3
    assert findings.orphans == {}
    assert findings.damaged == ()
    assert findings.hidden == ()
    assert findings.unreadable == ()


def test_chunks_no_document_names_are_orphans() -> None:
    # An interrupted put: chunks on a fresh nuid, no meta document at all.
    findings = classify([obj("a", "N1", 1)], {"N1": 1, "PUT": 3}, bucket=BUCKET)
    assert findings.orphans == {"PUT": 3}
    assert findings.damaged == ()


def test_chunks_of_a_deleted_object_are_orphans() -> None:
    # A delete that died before its purge: the marker still names the old nuid.
    infos = [obj("gone", "OLD", 2, deleted=True), obj("kept", "N1", 1)]
    findings = classify(infos, {"OLD": 2, "N1": 1}, bucket=BUCKET)
    assert findings.orphans == {"OLD": 2}
    assert findings.objects == 1  # the delete marker is not a live object
    assert findings.damaged == ()  # and is not damaged for having chunks


def test_chunks_on_a_links_nuid_are_orphans() -> None:
    # nats.go gives a link a nuid of its own; no reader ever reads chunks from it.
    infos = [obj("target", "T", 1), link("ln", "L", "target")]
    findings = classify(infos, {"T": 1, "L": 4}, bucket=BUCKET)
    assert findings.orphans == {"L": 4}
    assert findings.damaged == ()
    assert findings.objects == 2  # links are live objects


def test_chunks_of_an_overwritten_version_are_orphans() -> None:
    # Only the latest document of a name is passed; the previous version's nuid is unnamed.
    findings = classify([obj("a", "NEW", 1)], {"OLD": 2, "NEW": 1}, bucket=BUCKET)
    assert findings.orphans == {"OLD": 2}


def test_a_subject_with_no_messages_is_not_an_orphan() -> None:
    findings = classify([], {"EMPTY": 0}, bucket=BUCKET)
    assert findings.orphans == {}


def test_two_objects_sharing_a_nuid_both_own_it() -> None:
    infos = [obj("a", "N", 2), obj("b", "N", 2)]
    findings = classify(infos, {"N": 2}, bucket=BUCKET)
    assert findings.orphans == {}
    assert findings.damaged == ()


# Rule 2: damaged objects -----------------------------------------------------------------------


def test_missing_chunks_are_damage_with_counts_and_nuid() -> None:
    findings = classify([obj("a", "N1", 3)], {"N1": 2}, bucket=BUCKET)
    assert findings.damaged == (Damaged("a", "2 of 3 chunks stored (nuid N1)"),)
    assert findings.orphans == {}


def test_extra_chunks_are_damage() -> None:
    findings = classify([obj("a", "N1", 1)], {"N1": 2}, bucket=BUCKET)
    assert findings.damaged == (Damaged("a", "2 of 1 chunks stored (nuid N1)"),)
    assert findings.orphans == {}  # the subject is owned: damage, not an orphan


def test_no_chunks_at_all_is_damage() -> None:
    findings = classify([obj("a", "N1", 4)], {}, bucket=BUCKET)
    assert findings.damaged == (Damaged("a", "0 of 4 chunks stored (nuid N1)"),)


def test_an_object_without_a_nuid_but_with_chunks_is_damaged() -> None:
    findings = classify([obj("a", "", 1)], {}, bucket=BUCKET)
    [damaged] = findings.damaged
    assert (damaged.name, damaged.problem.split(" (")[0]) == ("a", "0 of 1 chunks stored")


def test_an_empty_object_needs_no_chunks() -> None:
    findings = classify([obj("empty", "N1", 0), obj("nonuid", "", 0)], {}, bucket=BUCKET)
    assert findings.damaged == ()


def test_a_link_to_a_missing_object_of_this_bucket_is_damaged() -> None:
    findings = classify([link("ln", "L", "nowhere")], {}, bucket=BUCKET)
    assert findings.damaged == (Damaged("ln", "link to missing object 'nowhere'"),)


def test_a_link_to_a_deleted_object_is_damaged() -> None:
    infos = [obj("t", "T", 1, deleted=True), link("ln", "L", "t")]
    findings = classify(infos, {}, bucket=BUCKET)
    assert findings.damaged == (Damaged("ln", "link to missing object 't'"),)


def test_a_link_to_a_live_object_is_fine_and_needs_no_chunks() -> None:
    infos = [obj("t", "T", 1), link("ln", "L", "t")]
    findings = classify(infos, {"T": 1}, bucket=BUCKET)
    assert findings.damaged == ()


def test_a_nats_js_link_to_another_bucket_is_not_checked() -> None:
    # nats.js writes the *target* bucket into the link document's own "bucket" field
    # (wire.md §9): the document says "other", and so does its link.
    js_link = ObjectInfo(name="ln", bucket="other", link=ObjectLink("other", "nowhere"))
    findings = classify([js_link], {}, bucket=BUCKET)
    assert findings.damaged == ()


def test_a_link_into_the_checked_bucket_is_checked_whatever_its_document_says() -> None:
    odd = ObjectInfo(name="ln", bucket="other", nuid="L", link=ObjectLink(BUCKET, "nowhere"))
    findings = classify([odd], {}, bucket=BUCKET)
    assert findings.damaged == (Damaged("ln", "link to missing object 'nowhere'"),)


def test_cross_bucket_and_bucket_links_are_not_checked() -> None:
    infos = [
        link("other", "L1", "nowhere", bucket="elsewhere"),
        link("whole", "L2", "", bucket="elsewhere"),
        link("self", "L3", ""),  # a link to this whole bucket
    ]
    findings = classify(infos, {}, bucket=BUCKET)
    assert findings.damaged == ()
    assert findings.objects == 3


# Rule 3: hidden names --------------------------------------------------------------------------

LONG = "x" * (MAX_COMPONENT_BYTES + 45)  # 300 bytes: over NAME_MAX


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a//b", REASON_EMPTY_COMPONENT),
        ("../x", REASON_DOT),
        ("a\x00b", REASON_NUL),
        (f"dir/{LONG}", REASON_TOO_LONG),
    ],
)
def test_hidden_names_are_listed_not_damage(name: str, reason: str) -> None:
    infos = [obj(name, "H", 1), obj("plain", "P", 1)]
    findings = classify(infos, {"H": 1, "P": 1}, bucket=BUCKET)
    assert findings.hidden == ((name, reason),)
    assert findings.damaged == ()
    assert findings.orphans == {}  # a hidden object still owns its chunks
    assert findings.objects == 2


def test_a_deleted_hidden_name_is_not_listed() -> None:
    findings = classify([obj("a//b", "H", 0, deleted=True)], {}, bucket=BUCKET)
    assert findings.hidden == ()


def test_a_hidden_damaged_object_is_both() -> None:
    findings = classify([obj("a//b", "H", 2)], {"H": 1}, bucket=BUCKET)
    assert findings.hidden == (("a//b", REASON_EMPTY_COMPONENT),)
    assert findings.damaged == (Damaged("a//b", "1 of 2 chunks stored (nuid H)"),)


def test_a_hidden_link_is_listed() -> None:
    infos = [obj("t", "T", 1), link("../ln", "L", "t")]
    findings = classify(infos, {"T": 1}, bucket=BUCKET)
    assert findings.hidden == (("../ln", REASON_DOT),)
    assert findings.damaged == ()


# Rule 4: unreadable documents ------------------------------------------------------------------


def test_unreadable_documents_are_listed_by_subject() -> None:
    infos = [obj("a", "N1", 1), obj("gone", "N2", 0, deleted=True)]
    garbage = ("$O.b.M.Z2FyYmFnZQ==", "$O.b.M.not-a-token")
    findings = classify(infos, {"N1": 1}, bucket=BUCKET, unreadable=garbage)
    assert findings.unreadable == garbage
    assert findings.objects == 1
    assert classify(infos, {"N1": 1}, bucket=BUCKET).unreadable == ()


def test_only_garbage_documents() -> None:
    findings = classify([], {"X": 2}, bucket=BUCKET, unreadable=("$O.b.M.eA==",) * 3)
    assert len(findings.unreadable) == 3
    assert findings.objects == 0
    assert findings.orphans == {"X": 2}


# The property ----------------------------------------------------------------------------------

NUIDS = [f"N{i}" for i in range(8)]

_entries = st.lists(
    st.tuples(
        st.sampled_from(NUIDS),
        st.integers(0, 4),  # chunks in the document
        st.sampled_from(["object", "deleted", "link"]),
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(entries=_entries, counts=st.dictionaries(st.sampled_from(NUIDS), st.integers(1, 5)))
def test_every_chunk_subject_is_owned_or_orphan_never_both(
    entries: list[tuple[str, int, str]], counts: dict[str, int]
) -> None:
    infos: list[ObjectInfo] = []
    for i, (nuid, chunks, kind) in enumerate(entries):
        name = f"o{i}"
        if kind == "link":
            infos.append(link(name, nuid, f"o{(i + 1) % len(entries)}"))
        else:
            infos.append(obj(name, nuid, chunks, deleted=kind == "deleted"))
    owned = {i.nuid for i in infos if not i.deleted and i.link is None}

    findings = classify(infos, counts, bucket=BUCKET)

    assert set(findings.orphans) <= set(counts)
    for nuid, messages in counts.items():
        is_orphan = nuid in findings.orphans
        assert is_orphan != (nuid in owned), (nuid, infos, counts)
        if is_orphan:
            assert findings.orphans[nuid] == messages
    live = [i for i in infos if not i.deleted]
    assert findings.objects == len(live)
    damaged = {d.name for d in findings.damaged}
    for info in live:
        if info.link is None:
            assert (info.name in damaged) == (counts.get(info.nuid, 0) != info.chunks)
    assert findings.unreadable == ()
