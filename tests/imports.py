"""Checks that importing a package stays light, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable


def assert_imports_none_of(modules: Iterable[str], forbidden: Iterable[str]) -> None:
    """Import ``modules`` in a new Python process; fail if that imported any of ``forbidden``."""
    code = (
        f"import sys, {', '.join(modules)}; "
        f"bad = set({sorted(forbidden)!r}) & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
