"""The ``geo-protect`` command line: thin wiring over the library.

Every command resolves settings, calls library functions and prints a summary. No
geometry or scoring logic lives here. Errors of the :class:`GeoProtectError` family
end the command with their message and exit code 2; nothing is half-written because
every store write is one transaction and every file is replaced atomically.

Modules: :mod:`._common` (the app, options, helpers), :mod:`.summaries` (the printed
tables), and the commands in :mod:`.data`, :mod:`.assessing` and :mod:`.jobs`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from geo_protect.cli import (  # noqa: F401  (registers commands)
    assessing,
    audit,
    data,
    jobs,
    live,
    scenarios,
    users,
)
from geo_protect.cli._common import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``geo-protect`` console script."""
    app(args=list(argv) if argv is not None else sys.argv[1:], prog_name="geo-protect")


if __name__ == "__main__":  # pragma: no cover
    main()
