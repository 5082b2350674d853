"""`python -m surveys.instruments lock`: add newly published versions to `published.lock.json`.

Only adds: a version already in the lock keeps its hash, so a changed published file stays an error
(put new wording in a new version file, add it to `PUBLISHED`, then run this).
"""

from __future__ import annotations

import json
import sys

from surveys.instruments import LOCK_PATH, PUBLISHED, file_sha256, instrument_path, read_lock


def main(argv: list[str]) -> int:
    """Run the command; returns the process exit status."""
    if argv != ["lock"]:
        print(__doc__, file=sys.stderr)
        return 2
    lock = read_lock()
    added = sorted(set(PUBLISHED) - set(lock))
    for id_version in added:
        lock[id_version] = file_sha256(instrument_path(id_version))
    LOCK_PATH.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print("added: " + (", ".join(added) or "nothing"))
    changed = sorted(v for v in lock if v in PUBLISHED and file_sha256(instrument_path(v)) != lock[v])
    if changed:
        print("changed after publication (not updated): " + ", ".join(changed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
