"""sdtui: the Textual app and the `sd` command line, both over sdcore."""

import os

__version__ = "0.1.0"

# Textual draws at most 60 frames a second by default: a key that lands just after a frame waits up to
# 17 ms for the next one, which alone breaks the 20 ms budget of a cursor move. 120 halves that wait;
# frames are only drawn when something changed, so an idle explorer costs nothing more. Set before
# Textual is imported (it reads the variable once); a value the user exported wins.
os.environ.setdefault("TEXTUAL_FPS", "120")
