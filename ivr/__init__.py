"""ivr: a programmable IVR and voice self-service engine."""

import logging

__version__ = "0.1.0"

# a library logs through its own logger: the program using it (ivr serve's JSON lines, or
# nobody for `ivr call` and `ivr test`) decides what is shown
logging.getLogger("ivr").addHandler(logging.NullHandler())
