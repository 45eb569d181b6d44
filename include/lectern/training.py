"""A release as training data: a small PyTorch ``Dataset`` over its shards, images read from the store.

    from lectern.training import ReleaseDataset
    pairs = ReleaseDataset.from_settings("r20261129-120000")     # the store of LECTERN_STORE_URL
    item = pairs[0]          # pairs: {"caption", "images": [PIL.Image, ...], "clip_start", "label", ...}
    loader = torch.utils.data.DataLoader(pairs, batch_size=8, collate_fn=list)

A textbook release's item is one sample in the published layout, its `images` entries opened (None where the
position is text). The same shards load with ``datasets.load_dataset("json" or "parquet", data_files=...)`` when
images are wanted as paths rather than pictures.
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable

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
        return self.transform(item) if self.transform else item

    def _image(self, key: str):
        from PIL import Image

        return Image.open(io.BytesIO(self.store.get_bytes(key))).convert("RGB")
