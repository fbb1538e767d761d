"""Stages 1-2 of the showcase and its sweep plan for CUDA, for ``gpu_session.sh`` (which then trains
the jobs several at a time). A script file, not ``python -`` on stdin: the synthetic twin's process
pool must be able to re-import ``__main__``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.run.showcase import build_data, plan_jobs  # noqa: E402

if __name__ == "__main__":
    work = Path(sys.argv[1]).resolve()
    data = build_data(work, progress=False)
    plan_jobs(data, work / "runs", device="cuda")
