"""LeRobot v3.0 writer/reader: round trip, metadata consistency, rollover, validation, atomicity."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rt2.data.lerobot import (
    DatasetFormatError,
    Episode,
    LeRobotDatasetReader,
    LeRobotWriter,
    numeric_stats,
    write_dataset,
)

H, W = 24, 32
FEATURES = {
    "observation.images.top": {"dtype": "image", "shape": [H, W, 3]},
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["ex", "ey", "tx", "ty"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
    "action.label_int": {"dtype": "int64", "shape": [2], "names": ["x", "y"]},
    "next.success": {"dtype": "bool", "shape": [1]},
}
TASKS = ("push the red star left", "move the blue cube to the top", "separate the green moon")


def make_episodes(n: int = 5, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    eps = []
    for e in range(n):
        t = int(rng.integers(2, 15))
        frames = {
            "observation.images.top": rng.integers(0, 256, (t, H, W, 3), dtype=np.uint8),
            "observation.state": rng.normal(size=(t, 4)).astype(np.float32),
            "action": rng.uniform(-0.1, 0.1, (t, 2)).astype(np.float32),
            "action.label_int": rng.integers(-10, 11, (t, 2)),
            "next.success": np.arange(t) == t - 1,
        }
        meta = {"success": bool(e % 2), "family": f"fam{e % 2}", "seed": 100 + e}
        eps.append(Episode(task=TASKS[e % len(TASKS)], frames=frames, metadata=meta))
    return eps


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[Episode]]:
    root = tmp_path_factory.mktemp("lr") / "ds"
    eps = make_episodes()
    write_dataset(root, eps, FEATURES, fps=10, robot_type="tabletop")
    return root, eps


def copy_of(written, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(written[0], dst)
    return dst


def test_round_trip_arrays_images_tasks(written):
    root, eps = written
    ds = LeRobotDatasetReader(root)
    assert ds.num_episodes == len(eps) and len(ds) == sum(len(e.frames["action"]) for e in eps)
    i = 0
    for e, ep in enumerate(eps):
        back = ds.episode(e)
        assert back["task"] == ep.task
        for name in FEATURES:
            np.testing.assert_array_equal(back[name].reshape(ep.frames[name].shape), ep.frames[name])
        for t in range(len(ep.frames["action"])):
            item = ds[i]
            assert item["task"] == ep.task and item["episode_index"] == e and item["frame_index"] == t
            assert item["index"] == i and item["timestamp"] == pytest.approx(t / 10)
            np.testing.assert_array_equal(item["observation.images.top"], ep.frames["observation.images.top"][t])
            assert item["observation.images.top"].dtype == np.uint8
            np.testing.assert_array_equal(item["action"], ep.frames["action"][t])
            i += 1
    meta = ds.episodes()
    assert [m["success"] for m in meta] == [bool(e % 2) for e in range(len(eps))]
    assert [m["seed"] for m in meta] == [100 + e for e in range(len(eps))]
    assert ds.tasks == list(TASKS)
    with pytest.raises(IndexError):
        ds[len(ds)]
    ds.cache_images()
    np.testing.assert_array_equal(
        ds[3]["observation.images.top"], LeRobotDatasetReader(root)[3]["observation.images.top"]
    )
    ns = ds.norm_stats("action")
    assert ns.names == ("x", "y") and ns.count == len(ds)


def test_info_stats_episodes_consistent(written):
    root, eps = written
    info = json.loads((root / "meta/info.json").read_text())
    n = sum(len(e.frames["action"]) for e in eps)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["video_path"] is None
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (len(eps), n, len(TASKS))
    assert info["splits"] == {"train": f"0:{len(eps)}"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert list(info["features"])[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert info["features"]["observation.images.top"]["names"] == ["height", "width", "channels"]

    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    actions = np.concatenate([e.frames["action"] for e in eps])
    for k, v in numeric_stats(actions).items():
        np.testing.assert_allclose(stats["action"][k], v, rtol=1e-12)
    imgs = np.concatenate([e.frames["observation.images.top"] for e in eps]).reshape(-1, 3) / 255.0
    im = {k: np.asarray(v) for k, v in stats["observation.images.top"].items()}
    assert im["mean"].shape == (3, 1, 1) and im["count"].tolist() == [n]
    np.testing.assert_allclose(im["mean"].ravel(), imgs.mean(0), atol=1e-9)
    np.testing.assert_allclose(im["std"].ravel(), imgs.std(0), atol=1e-9)
    np.testing.assert_allclose(im["q10"].ravel(), np.quantile(imgs, 0.10, axis=0), atol=1e-9)
    np.testing.assert_allclose(im["q99"].ravel(), np.quantile(imgs, 0.99, axis=0), atol=1e-9)

    ep_table = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
    for col in ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index",
                "stats/action/q01", "stats/observation.images.top/mean"):  # fmt: skip
        assert col in ep_table.column_names, col
    rows = ep_table.to_pylist()
    assert sum(r["length"] for r in rows) == n and rows[-1]["dataset_to_index"] == n
    ds = LeRobotDatasetReader(root)
    st = ds.episode_stats(2)
    assert st["action"]["count"].tolist() == [len(eps[2].frames["action"])]
    np.testing.assert_allclose(st["action"]["max"], eps[2].frames["action"].max(0), rtol=1e-6)


def test_parquet_encoding_matches_hf_datasets(written):
    """The column types and schema metadata Hugging Face `datasets` (LeRobot's loader) reads."""
    root, _ = written
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert schema.field("observation.images.top").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 4)
    assert schema.field("next.success").type == pa.bool_() and schema.field("index").type == pa.int64()
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.images.top"] == {"_type": "Image"}
    assert hf["action.label_int"] == {"feature": {"dtype": "int64", "_type": "Value"}, "length": 2, "_type": "Sequence"}
    png = pq.read_table(root / "data/chunk-000/file-000.parquet").column("observation.images.top")[0]["bytes"]
    assert png.as_py()[:8] == b"\x89PNG\r\n\x1a\n"
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]


def test_data_files_roll_over(tmp_path):
    eps = make_episodes(8, seed=1)
    write_dataset(tmp_path / "ds", eps, FEATURES, data_files_size_in_mb=0.004)
    files = sorted((tmp_path / "ds/data").glob("*/*.parquet"))
    assert len(files) > 2
    ds = LeRobotDatasetReader(tmp_path / "ds")
    file_idx = [e["data/file_index"] for e in ds.episodes()]
    assert file_idx == sorted(file_idx) and max(file_idx) == len(files) - 1
    np.testing.assert_array_equal(ds.episode(7)["observation.images.top"], eps[7].frames["observation.images.top"])
    # chunks_size=2 moves every third file into the next chunk folder
    write_dataset(tmp_path / "ds2", eps, FEATURES, data_files_size_in_mb=0.004, chunks_size=2)
    assert (tmp_path / "ds2/data/chunk-001/file-000.parquet").is_file()
    assert len(LeRobotDatasetReader(tmp_path / "ds2")) == len(ds)


def _rewrite_data(root: Path, fn) -> None:
    path = root / "data/chunk-000/file-000.parquet"
    pq.write_table(fn(pq.read_table(path)), path)


def _edit_info(root: Path, fn) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    fn(info)
    path.write_text(json.dumps(info))


def _set(col_name, values):
    return lambda t: t.set_column(
        t.column_names.index(col_name), col_name, pa.array(values(t), t.schema.field(col_name).type)
    )


MALFORMED = {
    "no_info": (lambda r: (r / "meta/info.json").unlink(), "meta/info.json: missing"),
    "old_version": (lambda r: _edit_info(r, lambda i: i.update(codebase_version="v2.1")), "codebase_version"),
    "no_total": (lambda r: _edit_info(r, lambda i: i.pop("total_frames")), "total_frames"),
    "no_tasks": (lambda r: (r / "meta/tasks.parquet").unlink(), "tasks.parquet: missing"),
    "missing_column": (lambda r: _rewrite_data(r, lambda t: t.drop_columns(["action"])), "file-000.parquet: missing column 'action'"),
    "shape_mismatch": (lambda r: _edit_info(r, lambda i: i["features"]["action"].update(shape=[3])), "'action' has rows of length [2]"),
    "index_gap": (lambda r: _rewrite_data(r, _set("index", lambda t: np.arange(t.num_rows) + (np.arange(t.num_rows) >= 3))), "field 'index'"),
    "frame_gap": (lambda r: _rewrite_data(r, _set("frame_index", lambda t: np.zeros(t.num_rows, np.int64))), "field 'frame_index'"),
    "extra_file": (lambda r: shutil.copy(r / "data/chunk-000/file-000.parquet", r / "data/chunk-000/file-009.parquet"), "file-009.parquet: data file not referenced"),
    "total_mismatch": (lambda r: _edit_info(r, lambda i: i.update(total_episodes=99)), "total_episodes"),
    "extra_column": (lambda r: _rewrite_data(r, lambda t: t.append_column("gripper", pa.array(np.zeros(t.num_rows)))), "file-000.parquet: column(s) ['gripper'] are not declared in meta/info.json"),
    "undeclared_in_parquet": (lambda r: _edit_info(r, lambda i: i["features"].update(extra={"dtype": "float32", "shape": [1]})), "missing column 'extra' declared in meta/info.json"),
    "bad_data_path": (lambda r: _edit_info(r, lambda i: i.update(data_path="data/{chunk}/{file}.parquet")), "field 'data_path'"),
    "truncated_data": (lambda r: _truncate(r / "data/chunk-000/file-000.parquet"), "file-000.parquet: not a readable parquet file"),
    "garbage_data": (lambda r: _scribble(r / "data/chunk-000/file-000.parquet"), "file-000.parquet: not a readable parquet file"),
    "corrupt_page": (lambda r: _scribble(r / "data/chunk-000/file-000.parquet", at=4), "file-000.parquet: not a readable parquet file"),
    "truncated_episodes": (lambda r: _truncate(r / "meta/episodes/chunk-000/file-000.parquet"), "meta/episodes/chunk-000/file-000.parquet: not a readable parquet file"),
    "empty_tasks": (lambda r: (r / "meta/tasks.parquet").write_bytes(b""), "tasks.parquet: not a readable parquet file"),
}  # fmt: skip


def _truncate(path: Path) -> None:
    """Cut the file in half, as an interrupted copy does (the parquet footer is lost)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scribble(path: Path, at: int = -64) -> None:
    """Overwrite 64 bytes with garbage, keeping the size: the footer by default (pyarrow.ArrowInvalid), or at
    byte 4 the first page header (a plain OSError from pyarrow, "Couldn't deserialize thrift")."""
    data = bytearray(path.read_bytes())
    data[at : at + 64 or None] = b"\xab" * 64
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_dataset_rejected_with_file_and_field(written, tmp_path, case):
    root = copy_of(written, tmp_path)
    mutate, message = MALFORMED[case]
    mutate(root)
    with pytest.raises(DatasetFormatError) as err:
        LeRobotDatasetReader(root)
    assert message in str(err.value)
    assert str(root) in str(err.value)
    if "not a readable parquet" in message:  # says what to do, not only what broke
        assert "re-collect" in str(err.value).lower() and "re-convert" in str(err.value)


def test_corrupt_image_named_on_access(written, tmp_path):
    root = copy_of(written, tmp_path)
    bad = pa.array(
        [{"bytes": b"not a png", "path": "x.png"}],
        pq.read_schema(root / "data/chunk-000/file-000.parquet").field("observation.images.top").type,
    )
    _rewrite_data(
        root,
        lambda t: t.set_column(0, "observation.images.top", pa.concat_arrays([bad, t.column(0).combine_chunks()[1:]])),
    )
    ds = LeRobotDatasetReader(root)
    ds[1]  # others still fine
    with pytest.raises(
        DatasetFormatError, match=r"column 'observation.images.top', row 0: bytes are not a decodable image"
    ):
        ds[0]


def test_bad_episode_input_errors(tmp_path):
    ep = make_episodes(1)[0]
    cases = [
        (Episode(ep.task, {k: v for k, v in ep.frames.items() if k != "action"}), "missing \\['action'\\]"),
        (
            Episode(
                ep.task, {**ep.frames, "observation.images.top": ep.frames["observation.images.top"].astype(np.float32)}
            ),
            "expected uint8",
        ),
        (Episode(ep.task, {**ep.frames, "action": ep.frames["action"][:-1]}), "same number"),
        (Episode(ep.task, {**ep.frames, "action.label_int": ep.frames["action.label_int"] + 0.5}), "without loss"),
        (Episode("", ep.frames), "non-empty string"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match), LeRobotWriter(tmp_path / "ds", FEATURES) as w:
            w.add_episode(bad)
        assert not (tmp_path / "ds").exists()
    with pytest.raises(ValueError, match="differ from the first"), LeRobotWriter(tmp_path / "ds", FEATURES) as w:
        w.add_episode(ep)
        w.add_episode(Episode(ep.task, ep.frames, {"other": 1}))
    with pytest.raises(ValueError, match="has dtype 'string'"):
        LeRobotWriter(tmp_path / "x", {"a": {"dtype": "string", "shape": [1]}})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _interrupting(eps, after: int):
    for i, ep in enumerate(eps):
        if i == after:
            raise KeyboardInterrupt
        yield ep


def test_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "ds", _interrupting(make_episodes(4), after=2), FEATURES, data_files_size_in_mb=0.004)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_old_dataset(written, tmp_path):
    root = copy_of(written, tmp_path)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(root, _interrupting(make_episodes(4, seed=9), after=3), FEATURES, overwrite=True)
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert before == after and sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_refuses_overwrite_unless_asked(written, tmp_path):
    root = copy_of(written, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_dataset(root, make_episodes(2), FEATURES)
    write_dataset(root, make_episodes(2, seed=3), FEATURES, overwrite=True)
    assert LeRobotDatasetReader(root).num_episodes == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    other = tmp_path / "not_a_dataset"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a LeRobot dataset"):
        write_dataset(other, make_episodes(1), FEATURES, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="no episodes"):
        write_dataset(tmp_path / "empty", [], FEATURES)
    assert not (tmp_path / "empty").exists()


def test_refuses_a_regular_file_as_root(tmp_path):
    # Before: a bare NotADirectoryError from iterdir (with overwrite) or mkdir (file on the parent path).
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="notes.txt exists and is not a directory"):
            LeRobotWriter(f, FEATURES, overwrite=overwrite)
    with pytest.raises(FileExistsError, match=r"notes.txt exists and is not a directory \(on the path to"):
        LeRobotWriter(f / "ds", FEATURES, overwrite=True)
    assert f.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stale_temp_folder_of_a_killed_writer_is_removed(tmp_path):
    dead = tmp_path / ".ds.tmp-999999999-deadbeef"  # above Linux's pid_max: no such process
    live = tmp_path / f".ds.tmp-{os.getpid()}-cafecafe"  # a live writer's folder must survive
    dead.mkdir()
    live.mkdir()
    write_dataset(tmp_path / "ds", make_episodes(1), FEATURES)
    assert not dead.exists() and live.exists()
