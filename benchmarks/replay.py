"""``wacrm replay`` speed and memory: peak RSS must stay flat as the file grows.

Run: ``.venv/bin/python benchmarks/replay.py [--bodies 20000]``. Generates a JSON-lines
history (seeded) of Cloud API bodies, replays 10 % and 100 % of it into fresh SQLite
databases in separate processes, and prints bodies/s and peak RSS for each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.payloads import at, inbound, status  # noqa: E402

WACRM = str(Path(sys.executable).with_name("wacrm"))


def write_history(path: Path, count: int, seed: int = 11) -> int:
    """A day-like stream: inbound messages and statuses from 1 contact per 10 bodies."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        for k in range(count):
            wa_id = f"4477009{rng.randrange(count // 10 + 1):05d}"
            when = at(minutes=k * 0.5)
            body = (
                inbound(f"wamid.r{k}", when, wa_id=wa_id, text="x" * rng.randrange(20, 400))
                if k % 3
                else status(f"wamid.r{k - 1}", "delivered", when, wa_id=wa_id)
            )
            out.write(body + b"\n")
    return path.stat().st_size


def run(history: Path, workdir: Path) -> tuple[float, int]:
    env = {
        **os.environ,
        "WACRM_DATABASE_URL": f"sqlite:///{workdir / 'replay.db'}",
        "WACRM_ADMIN_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": "bench",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WACRM_QUEUE_PATH": str(workdir / "q.db"),
        "WACRM_LOG_LEVEL": "WARNING",
    }
    subprocess.run([WACRM, "db", "upgrade"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [WACRM, "replay", str(history), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, _, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss // 1024  # MiB (Linux: KiB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bodies", type=int, default=20000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for share in (0.1, 1.0):
            count = int(args.bodies * share)
            history = Path(tmp) / f"history-{count}.jsonl"
            size = write_history(history, count)
            workdir = Path(tmp) / f"run-{count}"
            workdir.mkdir()
            seconds, rss = run(history, workdir)
            rows.append((count, size, seconds, rss))
    print(f"{'bodies':>8} {'MB':>8} {'seconds':>8} {'bodies/s':>9} {'peak RSS MiB':>13}")
    for count, size, seconds, rss in rows:
        print(f"{count:>8} {size / 1e6:>8.1f} {seconds:>8.1f} {count / seconds:>9.0f} {rss:>13}")
    growth = rows[1][3] / rows[0][3]
    print(f"peak RSS at 100 % / at 10 %: {growth:.2f} (flat means ≈ 1)")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    _ = resource  # stdlib only; wait4 gives the child's peak RSS
    main()
