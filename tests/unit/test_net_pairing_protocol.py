"""The pairing protocol's two halves over in-memory pipes: a man in the middle without the code gets nowhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sdcore.net.frames import pack_frame, read_frame
from sdcore.net.pairing import PairingError, PairingOffer, host_side, joiner_side, new_code
from sdcore.net.trust import key_text
from sdcore.sshlib import asyncssh


class Pipe:
    """One direction of a channel: what is written is read on the other end."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()

    def write(self, data: bytes) -> None:
        self.reader.feed_data(data)

    async def drain(self) -> None:
        return None


def me(name: str) -> dict[str, Any]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return {"key": key_text(key), "name": name, "id": name + "-id"}


async def run_pair(code_host: str, code_joiner: str) -> tuple[Any, Any, list[dict[str, Any]], PairingOffer]:
    to_host, to_joiner = Pipe(), Pipe()
    offer = PairingOffer(code_host)
    host, joiner = me("host"), me("joiner")
    accepted: list[dict[str, Any]] = []
    results = await asyncio.gather(
        host_side(offer, host, to_host.reader, to_joiner, accepted.append),
        joiner_side(code_joiner, joiner, host["key"], to_joiner.reader, to_host),
        return_exceptions=True,
    )
    return results[0], results[1], accepted, offer


async def test_same_code_pairs_and_each_side_learns_the_others_key() -> None:
    code = new_code()
    host_result, joiner_result, accepted, offer = await run_pair(code, code)
    assert offer.state == "used"
    assert accepted and accepted[0]["name"] == "joiner" and host_result["name"] == "joiner"
    assert joiner_result["name"] == "host"


async def test_a_different_code_is_refused_on_both_sides_and_burns_the_offer() -> None:
    host_result, joiner_result, accepted, offer = await run_pair(new_code(), new_code())
    assert host_result is None and accepted == []
    assert isinstance(joiner_result, PairingError) and "wrong pairing code" in str(joiner_result)
    assert offer.state == "burnt" and "burnt" in (offer.usable() or "")
    with pytest.raises(PairingError):
        offer.done.result()


async def test_a_man_in_the_middle_who_swaps_the_joiners_key_is_detected() -> None:
    """Mallory relays the PAKE messages faithfully but puts his own key in the joiner's message."""
    code = new_code()
    host_in, joiner_in = Pipe(), Pipe()
    mallory_in_from_joiner = Pipe()
    offer = PairingOffer(code)
    host, joiner, mallory = me("host"), me("joiner"), me("mallory")
    accepted: list[dict[str, Any]] = []

    async def relay() -> None:
        first = await read_frame(mallory_in_from_joiner.reader)
        first["key"], first["name"] = mallory["key"], "joiner"
        host_in.write(pack_frame(first))

    # host -> joiner unchanged; joiner -> mallory -> host with the key replaced
    results = await asyncio.gather(
        host_side(offer, host, host_in.reader, joiner_in, accepted.append),
        joiner_side(code, joiner, host["key"], joiner_in.reader, mallory_in_from_joiner),
        relay(),
        return_exceptions=True,
    )
    assert accepted == [] and results[0] is None
    assert isinstance(results[1], PairingError)
    assert offer.state == "burnt"


async def test_a_man_in_the_middle_who_presents_his_own_host_key_is_detected() -> None:
    """Mallory terminates the SSH channel (so the joiner sees his host key) and claims it as the host's."""
    code = new_code()
    host_in, joiner_in, mallory_in = Pipe(), Pipe(), Pipe()
    offer = PairingOffer(code)
    host, joiner, mallory = me("host"), me("joiner"), me("mallory")
    accepted: list[dict[str, Any]] = []

    async def relay() -> None:
        first = await read_frame(mallory_in.reader)  # host's first message
        first["key"] = mallory["key"]
        joiner_in.write(pack_frame(first))
        joiner_in.write(pack_frame(await read_frame(mallory_in.reader)))  # host's answer, as it is

    results = await asyncio.gather(
        host_side(offer, host, host_in.reader, mallory_in, accepted.append),
        joiner_side(code, joiner, mallory["key"], joiner_in.reader, host_in),
        relay(),
        return_exceptions=True,
    )
    assert accepted == [] and offer.state == "burnt"
    assert isinstance(results[1], PairingError)


async def test_a_stranger_answering_a_pairing_code_with_a_megabyte_is_refused_before_it_is_read() -> None:
    to_host, to_joiner = Pipe(), Pipe()
    offer = PairingOffer(new_code())
    stranger = pack_frame({"spake": b"x", "key": "k", "name": "n" * (1 << 20), "mac": b"m"})
    to_host.write(stranger[:4])  # only the length: a host that waits for the rest has already lost
    with pytest.raises(Exception, match="larger than the limit"):
        await asyncio.wait_for(host_side(offer, me("host"), to_host.reader, to_joiner, lambda info: None), 10)
    assert offer.state != "used"
