"""One process of the DDP test, launched twice by torchrun (see test_ddp.py).

Records every file this process opens for writing under the run directory (with an audit hook,
on ranks other than 0), trains the tiny config, then saves its final weights for the test.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(out: Path) -> None:
    rank = int(os.environ["RANK"])
    run_dir = str(out / "run")
    written: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open" and str(args[0]).startswith(run_dir):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
                written.append(str(args[0]))
        elif event in ("os.mkdir", "os.rename", "os.remove") and str(args[0]).startswith(run_dir):
            written.append(f"{event} {args[0]}")

    if rank != 0:
        sys.addaudithook(audit)

    import torch

    from rnnvision.config import config_from_dict
    from rnnvision.engine import train

    config = config_from_dict(json.loads(os.environ["DDP_TEST_CONFIG"]))
    result = train(config, out_dir=run_dir, quiet=True)
    torch.save(result.model.state_dict(), out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps({"written": written, "test": result.test_metrics}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
