"""MetricsWriter: JSON lines and TensorBoard event files beside them, a resumed run purging its replayed steps."""
import struct

from jaxsuite.core.metrics import MetricsWriter, read_metrics


def read_events(folder):
    """(file, [Event]) per events file, read from the TFRecord framing with tensorboardX's protos."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, events, i = path.read_bytes(), [], 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
            i += 12 + n + 4
        out.append((path, events))
    return out


def scalars(events):
    return [(e.step, v.tag, round(v.simple_value, 6)) for e in events for v in e.summary.value]


def test_every_record_goes_to_jsonl_and_tensorboard(tmp_path):
    w = MetricsWriter(tmp_path / "run" / "metrics.jsonl")
    w.write(1, "train", {"loss": 2.0})
    w.write(2, "train", {"loss": 1.5})
    w.write(2, "eval", {"accuracy": 0.75})
    w.close()
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 2]
    files = read_events(tmp_path / "run")  # beside metrics.jsonl
    assert len(files) == 1
    assert scalars(files[0][1]) == [(1, "train/loss", 2.0), (2, "train/loss", 1.5), (2, "eval/accuracy", 0.75)]


def test_a_resumed_run_purges_the_steps_it_replays(tmp_path):
    w = MetricsWriter(tmp_path / "metrics.jsonl")
    for s in (1, 2, 3):
        w.write(s, "train", {"loss": float(s)})
    w.close()
    w = MetricsWriter(tmp_path / "metrics.jsonl")  # resumed from the checkpoint of step 2
    w.truncate_after(2)
    w.write(3, "train", {"loss": 30.0})
    w.close()
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [(1, 1.0), (2, 2.0),
                                                                                           (3, 30.0)]
    files = read_events(tmp_path)
    assert len(files) == 2
    second = files[1][1] if scalars(files[1][1]) == [(3, "train/loss", 30.0)] else files[0][1]
    purge = [e for e in second if e.HasField("session_log")]
    assert purge and purge[0].step == 3 and purge[0].session_log.status == purge[0].session_log.START
