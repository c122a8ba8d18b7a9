"""sdcore: the in-process core of sdtui (libraries, indexing, jobs, events, network); no UI code."""

import warnings

# asyncssh still names cryptography's DSA types, and newer cryptography releases warn about that on import
# (ten lines on every network command). Only warnings raised from asyncssh's own modules are hidden;
# this package is imported before any of its modules imports asyncssh.
warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"asyncssh(\.|$)")
