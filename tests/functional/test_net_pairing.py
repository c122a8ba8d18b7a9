"""Pairing two devices with a 12-word code: right code pairs both ways; wrong, reused, expired are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mnemonic import Mnemonic

from sdcore.net import Network, PairingError
from sdcore.net.pairing import new_code, normalize_code
from sdcore.net.testing import device_network


@pytest.fixture
async def two(tmp_path: Path):
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        yield a, b


def test_a_code_is_twelve_checksummed_words() -> None:
    code = new_code()
    assert len(code.split()) == 12
    assert normalize_code("  " + code.upper().replace(" ", "   ") + " ") == code
    words = Mnemonic("english").wordlist
    typo = next(
        " ".join([*code.split()[:-1], w])
        for w in words
        if not Mnemonic("english").check(" ".join([*code.split()[:-1], w]))
    )
    with pytest.raises(PairingError, match="not a valid pairing code"):
        normalize_code(typo)
    with pytest.raises(PairingError, match="12 words"):
        normalize_code("abandon ability")


async def test_right_code_pairs_both_ways(two: tuple[Network, Network]) -> None:
    a, b = two
    code = a.pair_generate()
    waiter = asyncio.create_task(a.wait_paired(timeout=10))
    peer_a = await b.pair_join(code.split(), a.address or "")
    peer_b = await waiter
    assert peer_a.id == a.device.id and peer_a.name == "alpha" and peer_a.trust == "full"
    assert peer_b.id == b.device.id and peer_b.name == "beta"
    assert peer_a.addresses == (a.address,)
    assert [p.id for p in a.devices()] == [b.device.id]
    assert [p.id for p in b.devices()] == [a.device.id]
    assert a.trust.get(b.device.id).public_key == b.public_key  # type: ignore[union-attr]
    assert b.trust.get(a.device.id).public_key == a.public_key  # type: ignore[union-attr]


async def test_wrong_code_is_refused_and_burns_the_code(two: tuple[Network, Network]) -> None:
    a, b = two
    code = a.pair_generate()
    waiter = asyncio.create_task(a.wait_paired(timeout=10))
    wrong = new_code()
    with pytest.raises(PairingError, match="wrong pairing code"):
        await b.pair_join(wrong, a.address or "")
    with pytest.raises(PairingError, match="burnt"):
        await waiter
    # the right code no longer works either: the first failed attempt burnt it
    with pytest.raises(PairingError, match="burnt by a failed attempt"):
        await b.pair_join(code, a.address or "")
    assert a.devices() == [] and b.devices() == []


async def test_a_code_is_single_use(tmp_path: Path, two: tuple[Network, Network]) -> None:
    a, b = two
    code = a.pair_generate()
    await b.pair_join(code, a.address or "")
    async with device_network(tmp_path / "c", "gamma") as c:
        with pytest.raises(PairingError, match="already used"):
            await c.pair_join(code, a.address or "")
        assert c.devices() == []
    assert [p.name for p in a.devices()] == ["beta"]


async def test_an_expired_code_is_refused(two: tuple[Network, Network]) -> None:
    a, b = two
    code = a.pair_generate(ttl=0.2)
    await asyncio.sleep(0.3)
    with pytest.raises(PairingError, match="expired"):
        await b.pair_join(code, a.address or "")
    assert a.devices() == [] and b.devices() == []


async def test_no_code_generated_is_refused_clearly(two: tuple[Network, Network]) -> None:
    a, b = two
    with pytest.raises(PairingError, match="sd network pair generate"):
        await b.pair_join(new_code(), a.address or "")


async def test_shared_trust_is_recorded(two: tuple[Network, Network]) -> None:
    a, b = two
    code = a.pair_generate(trust="shared")
    await b.pair_join(code, a.address or "")
    assert a.devices()[0].trust == "shared"
    assert b.devices()[0].trust == "full"
