"""How `sd` writes a job's amount and rate: what a person reads beside a progress bar or in `sd job monitor`."""

from __future__ import annotations

from sdtui.cli.progress import amount, rate


def test_a_count_whose_total_is_not_known_yet_shows_no_zero_total() -> None:
    assert amount(61_777, 0, "entries") == "61,777 entries"  # discovery: not "61,777/0 entries"
    assert amount(914, 3_005, "files") == "914/3,005 files"
    assert amount(3 << 29, 5 << 30, "bytes") == "1.5G/5.0G"


def test_a_rate_reads_in_its_unit_and_is_left_out_before_it_is_measured() -> None:
    assert rate(0.0, "bytes") == ""
    assert rate(80 << 20, "bytes") == "80M/s"
    assert rate(1250.4, "files") == "1,250 files/s"
