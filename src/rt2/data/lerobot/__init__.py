"""LeRobotDataset v3.0 on disk: an atomic writer and a validating, lazily-decoding reader.

The public import path; the code lives in one module per concept:

    rt2.data.lerobot.format    paths, features and their arrow encodings, DatasetFormatError, checks of meta/
    rt2.data.lerobot.stats     dataset and per-episode stats in LeRobot's keys and shapes
    rt2.data.lerobot.episode   Episode, PreparedEpisode and prepare_episode (validate + PNG-encode)
    rt2.data.lerobot.writer    LeRobotWriter and write_dataset
    rt2.data.lerobot.reader    LeRobotDatasetReader
    rt2.data.lerobot.video     video features: VideoOptions, mp4 encode / frame-exact decode (PyAV, optional)

Where we differ from LeRobot, on purpose: dataset-level stats of numeric features are exact over all frames
(LeRobot count-weights per-episode quantiles), and image stats come from exact per-channel histograms of the
same frames LeRobot would sample. Keys and shapes (images: (3, 1, 1), scaled to [0, 1]) are LeRobot's.

    with LeRobotWriter("demo_data", features, fps=10, robot_type="tabletop") as w:  # temp dir, then rename
        w.add_episode(Episode(task="push the red star to the left", frames={...}, metadata={"success": True}))
    ds = LeRobotDatasetReader("demo_data")
    ds[0]  # {"observation.images.top": uint8[H, W, 3], "action": float32[2], ..., "task": str}
"""

from __future__ import annotations

from rt2.data.lerobot.episode import Episode, PreparedEpisode, prepare_episode
from rt2.data.lerobot.episode import encode_png as encode_png
from rt2.data.lerobot.format import CHUNK_FILE_PATTERN as CHUNK_FILE_PATTERN
from rt2.data.lerobot.format import CODEBASE_VERSION, DEFAULT_FEATURES, DatasetFormatError, validate_features
from rt2.data.lerobot.format import DATA_PATH as DATA_PATH
from rt2.data.lerobot.format import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE
from rt2.data.lerobot.format import DEFAULT_DATA_FILE_SIZE_IN_MB as DEFAULT_DATA_FILE_SIZE_IN_MB
from rt2.data.lerobot.format import DEFAULT_VIDEO_FILE_SIZE_IN_MB as DEFAULT_VIDEO_FILE_SIZE_IN_MB
from rt2.data.lerobot.format import EPISODES_PATH as EPISODES_PATH
from rt2.data.lerobot.format import INFO_PATH as INFO_PATH
from rt2.data.lerobot.format import NUMERIC_DTYPES as NUMERIC_DTYPES
from rt2.data.lerobot.format import PNG_COMPRESSION as PNG_COMPRESSION
from rt2.data.lerobot.format import STATS_PATH as STATS_PATH
from rt2.data.lerobot.format import TASKS_PATH as TASKS_PATH
from rt2.data.lerobot.format import VIDEO_PATH as VIDEO_PATH
from rt2.data.lerobot.format import arrow_type as arrow_type
from rt2.data.lerobot.format import hf_feature as hf_feature
from rt2.data.lerobot.reader import LeRobotDatasetReader
from rt2.data.lerobot.stats import QUANTILE_KEYS
from rt2.data.lerobot.stats import QUANTILES as QUANTILES
from rt2.data.lerobot.stats import episode_image_stats as episode_image_stats
from rt2.data.lerobot.stats import image_stats_from_histogram as image_stats_from_histogram
from rt2.data.lerobot.stats import numeric_stats as numeric_stats
from rt2.data.lerobot.stats import sample_indices as sample_indices
from rt2.data.lerobot.video import VideoDecodeError, VideoOptions
from rt2.data.lerobot.writer import LeRobotWriter, write_dataset

__all__ = [
    "CODEBASE_VERSION",
    "DEFAULT_FEATURES",
    "QUANTILE_KEYS",
    "VideoDecodeError",
    "VideoOptions",
    "DatasetFormatError",
    "Episode",
    "LeRobotDatasetReader",
    "LeRobotWriter",
    "PreparedEpisode",
    "prepare_episode",
    "validate_features",
    "write_dataset",
]
