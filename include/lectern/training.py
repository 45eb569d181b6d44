"""A release as training data: a small PyTorch ``Dataset`` over its shards, images read from the store.

    from lectern.training import ReleaseDataset
    pairs = ReleaseDataset.from_settings("r20261129-120000")     # the store of LECTERN_STORE_URL
    item = pairs[0]          # pairs: {"caption", "images": [PIL.Image, ...], "clip_start", "label", ...}
    loader = torch.utils.data.DataLoader(pairs, batch_size=8, collate_fn=list)
    for item in pairs: ...   # plain Python, no torch needed
    for batch in pairs.numpy_batches(32, image_size=(224, 224)): batch["keyframe"].shape  # (32, 224, 224, 3) uint8

A pairs item also has its video's cover image as `cover_image` (None without one). A textbook release's item is one
sample in the published layout, its `images` entries opened (None where the
position is text). The same shards load with ``datasets.load_dataset("json" or "parquet", data_files=...)`` when
images are wanted as paths rather than pictures.
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable, Iterator

from lectern.config import Settings
from lectern.store import Keys, Store, store_from_settings

try:  # a Dataset when torch is there (the worker image, the dev environment); a plain sequence otherwise
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


class ReleaseDataset(_Base):
    def __init__(self, store: Store, release: str, load_images: bool = True,
                 transform: Callable[[Any], Any] | None = None):
        manifest = store.get_json(Keys.release(release, "manifest.json"))
        self.kind = manifest.get("kind", "textbook")
        self.store, self.release, self.load_images, self.transform = store, release, load_images, transform
        self.items: list[dict] = []
        for shard in manifest["shards"]:
            self.items += [json.loads(line) for line in store.get_bytes(shard).decode().splitlines() if line.strip()]

    @classmethod
    def from_settings(cls, release: str, settings: Settings | None = None, **kwargs) -> "ReleaseDataset":
        return cls(store_from_settings(settings or Settings.from_env()), release, **kwargs)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.items[index])
        if self.load_images:
            keys = item["keyframes"] if self.kind == "pairs" else item["images"]
            item["images"] = [self._image(key) if key else None for key in keys]
            if self.kind == "pairs":
                item["cover_image"] = self._image(item["cover"]) if item.get("cover") else None
        return self.transform(item) if self.transform else item

    def __iter__(self) -> Iterator[dict]:
        """The items in release order, as a plain Python iterator."""
        return (self[index] for index in range(len(self)))

    def numpy_batches(self, batch_size: int = 32, image_size: tuple[int, int] = (224, 224)) -> Iterator[dict]:
        """Batches as numpy arrays, in release order (the last one may be smaller). Pairs: `keyframe` (the clip's
        middle keyframe) and `cover` as (B, H, W, 3) uint8 (zeros where a clip has none; `has_cover` says which),
        `clip_start`, `clip_end`, `clip_similarity`, `aesthetic` (float32, NaN where unscored), and the texts as
        lists (`video_id`, `caption`, `label`, `description`). Textbook: `image_num`, `token_num` (int64) and the
        samples' `texts` and `images` ((H, W, 3) uint8 arrays, None at text positions) as lists."""
        import numpy as np

        def array(image) -> "np.ndarray":
            return np.asarray(image.resize(image_size), dtype=np.uint8)

        blank = np.zeros((image_size[1], image_size[0], 3), dtype=np.uint8)
        for begin in range(0, len(self), batch_size):
            items = [self[index] for index in range(begin, min(begin + batch_size, len(self)))]
            if self.kind != "pairs":
                yield {"image_num": np.array([i["image_num"] for i in items], dtype=np.int64),
                       "token_num": np.array([i["token_num"] for i in items], dtype=np.int64),
                       "texts": [i["texts"] for i in items],
                       "images": [[array(im) if im is not None else None for im in i["images"]] for i in items]}
                continue
            batch: dict[str, Any] = {key: [i.get(key) for i in items]
                                     for key in ("video_id", "caption", "label", "description")}
            for key in ("clip_start", "clip_end", "clip_similarity", "aesthetic"):
                batch[key] = np.array([np.nan if i[key] is None else i[key] for i in items], dtype=np.float32)
            batch["keyframe"] = np.stack([array(i["images"][len(i["images"]) // 2]) if i["images"] else blank
                                          for i in items])
            batch["cover"] = np.stack([array(i["cover_image"]) if i["cover_image"] else blank for i in items])
            batch["has_cover"] = np.array([i["cover_image"] is not None for i in items])
            yield batch

    def _image(self, key: str):
        from PIL import Image

        return Image.open(io.BytesIO(self.store.get_bytes(key))).convert("RGB")
