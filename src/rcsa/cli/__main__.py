"""``python -m rcsa.cli``: the ``rcsa`` command."""

from rcsa.cli import app

if __name__ == "__main__":  # pragma: no cover
    app()
