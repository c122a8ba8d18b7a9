"""A library's member list as other members send it: an entry counts when a member here signed it, as it was."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sdcore.sync import hlc, members
from sdcore.sync.members import Member, Members
from sdcore.sync.signing import Signer

LIBRARY = uuid.uuid4()


def device() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def members_of(folder: Path, who: Signer) -> Members:
    folder.mkdir(exist_ok=True)
    return Members(folder, LIBRARY, who)


def test_a_member_added_by_a_device_that_the_same_list_makes_a_member_joins(tmp_path: Path) -> None:
    alpha, beta, gamma, delta = device(), device(), device(), device()
    at_alpha = members_of(tmp_path / "alpha", alpha)
    at_alpha.add(beta.device_id, "beta")
    at_alpha.add(gamma.device_id, "gamma")
    delta_by_gamma = Member(delta.device_id, "delta", 100.0).signed_by(gamma, LIBRARY)
    sent = at_alpha.packed()
    sent.insert(0, [delta_by_gamma.device_id, "delta", 100.0, None, gamma.device_id, gamma.public_key, delta_by_gamma.sig])

    at_beta = members_of(tmp_path / "beta", beta)
    at_beta.add(alpha.device_id, "alpha")  # alpha shared it with beta
    joined = at_beta.merge(sent, beta.device_id)
    assert sorted(m.name for m in joined) == ["delta", "gamma"]
    assert sorted(m.name for m in at_beta.current()) == ["alpha", "delta", "gamma"]


def test_a_member_cannot_change_what_another_wrote_nor_speak_for_it(tmp_path: Path) -> None:
    alpha, beta, gamma, mallory, delta = device(), device(), device(), device(), device()
    at_beta = members_of(tmp_path / "beta", beta)
    at_beta.add(alpha.device_id, "alpha")
    at_beta.add(gamma.device_id, "gamma")
    before = at_beta.path.read_bytes()
    alphas_entry = at_beta.packed()[0]

    def row(m: Member) -> list[object]:
        return [m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig]

    renamed = [alphas_entry[0], "alpha (evil twin)", *alphas_entry[2:]]  # beta's entry, its name changed by gamma
    as_if_alpha = dataclasses.replace(Member(delta.device_id, "delta", 500.0).signed_by(gamma, LIBRARY), by=alpha.device_id)
    alpha_removed_as_if_by_beta = dataclasses.replace(
        Member(alpha.device_id, "alpha", 1.0, removed=9e9).signed_by(gamma, LIBRARY), by=beta.device_id, key=beta.public_key
    )
    by_a_stranger = Member(mallory.device_id, "mallory", 500.0).signed_by(mallory, LIBRARY)
    other_library = Member(delta.device_id, "delta", 600.0).signed_by(gamma, uuid.uuid4())
    sent = [renamed, row(as_if_alpha), row(alpha_removed_as_if_by_beta), row(by_a_stranger), row(other_library)]

    assert at_beta.merge(sent, beta.device_id) == []
    assert at_beta.path.read_bytes() == before
    assert sorted(m.name for m in at_beta.current()) == ["alpha", "gamma"]


def test_a_removed_member_no_longer_changes_the_list(tmp_path: Path) -> None:
    alpha, beta, gamma, delta = device(), device(), device(), device()
    at_beta = members_of(tmp_path / "beta", beta)
    at_beta.add(alpha.device_id, "alpha")
    at_beta.add(gamma.device_id, "gamma")
    at_beta.remove(gamma.device_id)
    delta_by_gamma = Member(delta.device_id, "delta", 9e9).signed_by(gamma, LIBRARY)
    back_by_gamma = Member(gamma.device_id, "gamma", 9e9).signed_by(gamma, LIBRARY)
    sent = [[m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig] for m in (delta_by_gamma, back_by_gamma)]
    assert at_beta.merge(sent, beta.device_id) == []
    assert [m.name for m in at_beta.current()] == ["alpha"]


@pytest.mark.parametrize(
    "row",
    [
        ["not a uuid", "x", 1.0, None, "", b"k" * 32, b"s" * 64],
        [str(uuid.uuid4()), "x", 1.0, None, ""],  # unsigned, as before lists were signed
        [str(uuid.uuid4()), "x" * 201, 1.0, None, "", b"k" * 32, b"s" * 64],
        [str(uuid.uuid4()), "x", 1.0, None, "", b"k" * 31, b"s" * 64],
    ],
)
def test_a_malformed_member_entry_is_refused_with_what_it_should_be(tmp_path: Path, row: list[object]) -> None:
    with pytest.raises(ValueError, match="a member"):
        members_of(tmp_path / "beta", device()).merge([row], uuid.uuid4())


def test_a_member_cannot_remove_another_for_good_by_dating_the_removal_in_the_future(tmp_path: Path) -> None:
    alpha, beta, gamma, delta = device(), device(), device(), device()
    at_beta = members_of(tmp_path / "beta", beta)
    for who, name in ((alpha, "alpha"), (gamma, "gamma"), (delta, "delta")):
        at_beta.add(who.device_id, name)

    def row(m: Member) -> list[object]:
        return [m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig]

    in_the_year_4000 = Member(alpha.device_id, "alpha", 1.0, removed=6.4e10).signed_by(gamma, LIBRARY)  # by gamma, hostile
    assert at_beta.merge([row(in_the_year_4000)], beta.device_id) == []
    shared_again = Member(alpha.device_id, "alpha", time.time() + 1).signed_by(delta, LIBRARY)  # what delta would send
    at_beta.merge([row(shared_again)], beta.device_id)
    assert sorted(m.name for m in at_beta.current()) == ["alpha", "delta", "gamma"]  # before: alpha out for 2,000 years


def test_a_third_device_is_removed_only_by_a_device_paired_here_with_full_trust_and_any_device_may_leave(
    tmp_path: Path,
) -> None:
    alpha, beta, gamma, delta = device(), device(), device(), device()
    at_beta = members_of(tmp_path / "beta", beta)
    for who, name in ((alpha, "alpha"), (gamma, "gamma"), (delta, "delta")):
        at_beta.add(who.device_id, name)

    def row(m: Member) -> list[object]:
        return [m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig]

    later = time.time() + 10
    by_gamma = [row(Member(who.device_id, name, 1.0, removed=later).signed_by(gamma, LIBRARY))
                for who, name in ((alpha, "alpha"), (delta, "delta"))]  # fmt: skip
    assert at_beta.merge(by_gamma, beta.device_id, trusted={alpha.device_id}) == []
    assert sorted(m.name for m in at_beta.current()) == ["alpha", "delta", "gamma"]  # gamma is not trusted here
    at_beta.merge(by_gamma[1:], beta.device_id, trusted={gamma.device_id})  # trusted here: delta's removal counts
    assert sorted(m.name for m in at_beta.current()) == ["alpha", "gamma"]
    gamma_leaves = Member(gamma.device_id, "gamma", 1.0, removed=later).signed_by(gamma, LIBRARY)
    back_by_itself = Member(gamma.device_id, "gamma", later + 1).signed_by(gamma, LIBRARY)
    at_beta.merge([row(gamma_leaves)], beta.device_id)
    at_beta.merge([row(back_by_itself)], beta.device_id)
    assert [m.name for m in at_beta.current()] == ["alpha"]  # it left, and does not come back by itself


def test_sharing_again_after_a_removal_dated_ahead_by_a_clock_ahead_counts_on_every_member(tmp_path: Path) -> None:
    assert members.MAX_AHEAD * 1000 == hlc.MAX_AHEAD_MS  # a member list entry may be as far ahead as an op, no more
    alpha, beta, gamma, delta = device(), device(), device(), device()
    at_beta, at_delta = members_of(tmp_path / "beta", beta), members_of(tmp_path / "delta", delta)
    at_beta.add(alpha.device_id, "alpha")
    at_beta.add(gamma.device_id, "gamma")
    at_beta.add(delta.device_id, "delta")
    at_delta.add(beta.device_id, "beta")
    at_delta.merge(at_beta.packed(), delta.device_id)
    assert sorted(m.name for m in at_delta.current()) == ["alpha", "beta", "gamma"]

    def row(m: Member) -> list[object]:
        return [m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig]

    gammas_clock = time.time() + 23 * 3600  # gamma's clock a day ahead, nearly: within what an op may be
    removed = Member(alpha.device_id, "alpha", 1.0, removed=gammas_clock).signed_by(gamma, LIBRARY)
    for here, me in ((at_beta, beta), (at_delta, delta)):
        here.merge([row(removed)], me.device_id, trusted={gamma.device_id})
        assert "alpha" not in [m.name for m in here.current()]
    at_beta.add(alpha.device_id, "alpha")  # beta's user shares the library with alpha again
    at_delta.merge(at_beta.packed(), delta.device_id, trusted={beta.device_id})
    assert "alpha" in [m.name for m in at_delta.current()]  # before: out on delta (and everywhere) for 23 h
    beyond = Member(gamma.device_id, "gamma", 1.0, removed=time.time() + members.MAX_AHEAD + 60).signed_by(beta, LIBRARY)
    at_delta.merge([row(beyond)], delta.device_id)  # past what an op's stamp may be ahead: refused, as an op is
    assert "gamma" in [m.name for m in at_delta.current()]
