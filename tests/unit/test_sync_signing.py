"""A device's signing key is its SSH identity key: the id a key proves is the device id pairing knows it by."""

from __future__ import annotations

from pathlib import Path

from sdcore.device import KEY_FILE, load_or_create
from sdcore.sync import signing


def test_the_signer_of_a_data_dir_is_its_device_and_its_key_proves_that_id(tmp_path: Path) -> None:
    device = load_or_create(tmp_path / "alpha")
    signer = signing.Signer.from_file(tmp_path / "alpha" / KEY_FILE)
    assert signer.device_id == str(device.id) == signing.device_of_key(signer.public_key)
    signed = signing.payload("op", "library", ["x"])
    assert signing.verify(signer.public_key, signed, signer.sign(signed))
    assert not signing.verify(signer.public_key, signing.payload("op", "another library", ["x"]), signer.sign(signed))


def test_a_key_sent_under_another_devices_id_is_dropped(tmp_path: Path) -> None:
    alpha = signing.Signer.from_file(_key(tmp_path, "alpha"))
    gamma = signing.Signer.from_file(_key(tmp_path, "gamma"))
    sent = {alpha.device_id: gamma.public_key, gamma.device_id: gamma.public_key, "x": b"k" * 32, alpha.public_key: 1}
    assert signing.checked_keys(sent) == {gamma.device_id: gamma.public_key}
    assert signing.checked_keys(["not", "a", "map"]) == {}


def _key(tmp_path: Path, name: str) -> Path:
    load_or_create(tmp_path / name)
    return tmp_path / name / KEY_FILE
