"""Command-line entry points (the edge of the package: nothing below imports them)."""
