"""Where the recorded output of the reference TypeScript runtime lives (tests/data).

Each folder is one scenario (config, the fake model's script, stdout, the requests the
model received, the workspace files); tests/data/perstack-ts/README.md describes them.
"""

from pathlib import Path

RECORDINGS = Path(__file__).resolve().parent / "data" / "perstack-ts"
