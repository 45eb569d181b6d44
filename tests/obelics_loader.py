"""What the paper's own training loader does with a corpus (``ObelicsFormatDataset`` in DAMO-NLP-SG/multimodal_textbook,
``llava/train/datasets.py``), read from its source and written again here without its model dependencies (torch,
transformers, LLaVA): how it finds the samples, every assertion it makes on one, and how it opens images. A
corpus that passes `load_all` is one that loader reads; any failure is one of its assertions or errors."""

from __future__ import annotations

import json
import os

from PIL import Image

# The folder the loader joins every image path to (os.path.join: an absolute path replaces it).
LOADER_IMAGE_DIR = "/mnt/workspace/multimodal_textbook/example_data"
MAX_NUM_IMAGES = 12  # mmc4_max_num_images in its training script


def _read(path: str) -> list[dict]:
    if path.endswith(".json"):
        with open(path) as handle:
            return json.load(handle)
    if path.endswith(".jsonl"):
        with open(path) as handle:
            return [json.loads(line) for line in handle]
    raise ValueError(f"Unknown file format: {path}")


class ObelicsCorpus:
    """The loader's view of `data_path`: one .json array, one .jsonl file, or a folder of shards."""

    def __init__(self, data_path: str):
        self.data_path = data_path
        if not os.path.isdir(data_path):
            self.data = _read(data_path)
            self.length = len(self.data)
            self.ranges = None
            return
        with open(os.path.join(data_path, "length.json")) as handle:
            lengths = json.load(handle)
        with open(os.path.join(data_path, "shard_id_range.json")) as handle:
            self.ranges = json.load(handle)
        self.length = sum(lengths.values())
        ids = sorted(i for start, end in self.ranges.values() for i in range(start, end))
        assert ids[:self.length] == list(range(self.length)), "shard_id_range does not cover 0..N-1"
        first = next(name for name, (start, _) in self.ranges.items() if start == 0)
        self.shard, self.shard_data = first, _read(os.path.join(data_path, first))

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> dict:
        if self.ranges is None:
            return self.data[index]
        start, end = self.ranges[self.shard]
        if not start <= index < end:
            for name, (start, end) in self.ranges.items():
                if start <= index < end:
                    self.shard, self.shard_data = name, _read(os.path.join(self.data_path, name))
                    break
        start, _ = self.ranges[self.shard]
        return self.shard_data[index - start]


def parse_sample(sample: dict):
    """The loader's checks on one sample."""
    images, texts = sample["images"], sample["texts"]
    metadata = sample.get("metadata", [None] * len(images))
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    assert isinstance(metadata, list), metadata
    valid_image = sample.get("valid_image", [True] * sum(img is not None for img in images))
    assert len(images) == len(texts)
    assert sum(img is not None for img in images) == sum(txt is None for txt in texts) == len(valid_image)
    return images, texts, metadata, valid_image


def load_item(sample: dict, max_num_images: int = MAX_NUM_IMAGES) -> tuple[list[Image.Image], str]:
    """One training item as the loader builds it: the first `max_num_images` images opened with PIL, and the text
    with an ``<image>`` token at each kept image's place."""
    images, texts, _, valid_image = parse_sample(sample)
    valid_image = list(valid_image)
    kept = 0
    for i, valid in enumerate(valid_image):
        if valid:
            kept += 1
            if kept > max_num_images:
                valid_image[i] = False
    paths = [img for img in images if img is not None]
    opened = [Image.open(os.path.join(LOADER_IMAGE_DIR, p)).convert("RGB") for p, v in zip(paths, valid_image) if v]
    assert len(opened) > 0
    texts, image_index = list(texts), 0
    for i, text in enumerate(texts):
        if text is None:
            if valid_image[image_index]:
                texts[i] = "<image>"
            image_index += 1
    text = " ".join(t for t in texts if t)
    assert text.count("<image>") == len(opened)
    return opened, text


def load_all(data_path: str, max_num_images: int = MAX_NUM_IMAGES) -> list[tuple[list[Image.Image], str]]:
    corpus = ObelicsCorpus(data_path)
    return [load_item(corpus.sample(i), max_num_images) for i in range(len(corpus))]
