"""``python -m geo_protect.cli``: the same as the ``geo-protect`` command."""

from geo_protect.cli import main

if __name__ == "__main__":
    main()
