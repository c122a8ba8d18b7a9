"""`python -m sdtui.cli`: the `sd` command (what `sd serve` runs for a command over SSH)."""

import sys

from sdtui.cli import main

sys.argv[0] = "sd"  # as its messages name it
main()
