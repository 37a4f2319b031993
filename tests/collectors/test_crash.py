"""kill -9 mid-write: the store stays intact and loses at most the batch in flight.

A real writer process appends numbered batches through `SampleStore` and says which ones
committed; the test kills it with SIGKILL right after a commit (when the next batch is being
built or written) several times, restarting it each time, then checks the file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from collectors import SampleStore, ScrapedSample, open_database

REPO = Path(__file__).resolve().parents[2]
SERIES = 2000
T0 = 1_767_000_000.0

# Raw samples live in two tables: the head (where appends land) and the main table.
ALL_SAMPLES = (
    "(SELECT timestamp_s FROM metric_samples UNION ALL SELECT timestamp_s FROM metric_samples_head)"
)

# The head is merged into the main table every third batch, so kills also hit merges.
WRITER = f"""
import sys
import collectors._store
from collectors import SampleStore, ScrapedSample, open_database

collectors._store.HEAD_MERGE_ROWS = 3 * {SERIES}
engine = open_database(sys.argv[1])
store = SampleStore(engine)
with engine.connect() as connection:
    last = connection.exec_driver_sql("SELECT max(timestamp_s) FROM {ALL_SAMPLES}").scalar()
batch = 0 if last is None else int(last - {T0}) + 1
while True:
    store.append(
        [
            ScrapedSample("crash_test", {{"k": str(k)}}, float(batch), {T0} + batch)
            for k in range({SERIES})
        ]
    )
    print(batch, flush=True)
    batch += 1
"""


def run_and_kill(url: str, commits: int) -> list[int]:
    """Start a writer, let it commit `commits` batches, SIGKILL it; the batches it reported."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    reported = []
    try:
        for line in writer.stdout:
            reported.append(int(line))
            if len(reported) == commits:
                os.kill(writer.pid, signal.SIGKILL)  # mid-way through the next batch
                break
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=30)
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL, f"the writer exited with {writer.returncode}"
    return reported


def test_sigkill_mid_write_loses_at_most_the_batch_in_flight(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    reported: list[int] = []
    for round_ in range(5):
        reported.extend(run_and_kill(url, commits=2 + round_))
    # Each run resumed after the last commit (a batch committed but killed before it was
    # reported is skipped over, not written twice).
    assert reported == sorted(set(reported))

    engine = open_database(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            per_batch = dict(
                connection.exec_driver_sql(
                    f"SELECT CAST(timestamp_s - ? AS INTEGER), count(*) FROM {ALL_SAMPLES}"
                    " GROUP BY timestamp_s ORDER BY timestamp_s",
                    (T0,),
                ).all()
            )
            logged = connection.execute(sa.text("SELECT count(*) FROM metric_writes")).scalar()
        # Every reported batch is there, whole; a batch in flight at a kill either committed
        # whole (and was the next run's starting point) or left no trace.
        assert set(reported) <= set(per_batch)
        assert set(per_batch) == set(range(len(per_batch)))
        assert len(per_batch) - len(reported) <= 5
        assert set(per_batch.values()) == {SERIES}
        assert logged == len(per_batch)  # the write log agrees: one entry per whole batch

        store = SampleStore(engine)  # appends resume
        next_batch = len(per_batch)
        store.append([ScrapedSample("crash_test", {"k": "0"}, 1.0, T0 + next_batch)])
        frame = store.select('crash_test{k="0"}', T0, T0 + next_batch)
        assert frame["timestamp_s"].tolist() == [T0 + b for b in range(next_batch + 1)]
    finally:
        engine.dispose()
