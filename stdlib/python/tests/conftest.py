"""Puts stdlib/python on sys.path so the tests import the ftc package
from the working tree, whichever directory pytest starts in."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
