"""The driver-side progress of `genie train` runs in a log: a line per metrics record."""

import json

from jobs.train import MetricsFollower, describe


def test_follower_reports_new_step_records_once_each_and_skips_events(tmp_path):
    """Records already there (a resumed run's), events and a half-written line are not reported early."""
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 5, "loss": 1.0}) + "\n")
    seen = []
    with MetricsFollower(path, seen.append, poll_s=0.01) as follower:
        with open(path, "a") as log:
            log.write(json.dumps({"step": 10, "loss": 0.5}) + "\n" + json.dumps({"event": "checkpoint", "step": 10}) + "\n")
            log.write('{"step": 15, "lo')
            log.flush()
            follower._read_new()
            assert [record["step"] for record in seen] == [10]
            log.write('ss": 0.25}\n')
    assert seen == [{"step": 10, "loss": 0.5}, {"step": 15, "loss": 0.25}]


def test_a_record_reads_as_one_line():
    """Step of total, loss, PSNR when the model has one, and seconds per step."""
    record = {"step": 50, "loss": 0.01234, "psnr": 21.456, "step_time_s": 0.512}
    assert describe(record, 1200) == "step 50/1200  loss 0.01234  psnr 21.46  0.51 s/step"


def test_a_second_start_is_reported_as_a_restart(tmp_path):
    """The first start of the workers is not news; a second one (Ray Train restarted the group) is."""
    path = tmp_path / "metrics.jsonl"
    seen = []
    with MetricsFollower(path, seen.append, poll_s=0.01):
        with open(path, "a") as log:
            for record in ({"event": "start", "step": 0, "resumed": False}, {"step": 50, "loss": 0.5},
                           {"event": "start", "step": 0, "resumed": False}, {"event": "start", "step": 200, "resumed": True}):
                log.write(json.dumps(record) + "\n")
    assert [r.get("event") for r in seen] == [None, "restart", "restart"]
    assert describe(seen[1], 600) == "workers restarted after a failure: step 0/600, from scratch (no checkpoint yet)"
    assert describe(seen[2], 600) == "workers restarted after a failure: step 200/600, from its last checkpoint"
