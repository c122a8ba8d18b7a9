"""asyncssh, imported with cryptography's DSA deprecation warning silenced: import it from here, never directly."""

import warnings

# asyncssh still names cryptography's DSA types, and newer cryptography releases warn about that on
# import: ten lines on every network command. The filter lasts only for this import and matches only
# warnings raised from asyncssh's own modules.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"asyncssh(\.|$)")
    import asyncssh

__all__ = ["asyncssh"]
