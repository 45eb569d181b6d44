"""The short-video dataset's baseline classifier, over a pairs release: description text + cover image + video ->
category. A small PyTorch model (two linear layers) over frozen embeddings: the description's (the sentence
embedder, LECTERN_EMBEDDING_MODEL, MiniLM by default), and the cover's and the keyframes' mean (the CLIP of
LECTERN_CAPTION_SCORE_MODEL, where one is configured; without one, text only).

    lectern baseline train --release R       # trains on a split of R's videos, reports, saves the model
    lectern baseline evaluate --release R    # the saved model on the same held-out videos

The split is by video (every clip of a video on one side), per category, and the same on every run: the videos of
each category ordered by a hash of their id, the first `test_fraction` held out. The model, its categories and
its report are saved in the store under ``baselines/{release}/``."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field

from lectern.config import Settings
from lectern.store import Keys, Store, store_from_settings

log = logging.getLogger("lectern")


@dataclass
class Example:
    """One video of the release: what the classifier sees, and its category."""

    video_id: str
    label: str
    description: str
    cover: str | None
    keyframes: list[str] = field(default_factory=list)


def examples(store: Store, release: str) -> list[Example]:
    """The release's labelled videos, each with every keyframe of its kept clips."""
    manifest = store.get_json(Keys.release(release, "manifest.json"))
    if manifest.get("kind") != "pairs":
        raise ValueError(f"release {release!r} is a {manifest.get('kind', 'textbook')} release: the baseline "
                         "trains on a pairs release")
    videos: dict[str, Example] = {}
    for shard in manifest["shards"]:
        for line in store.get_bytes(shard).decode().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if not row.get("label"):
                continue
            video = videos.setdefault(row["video_id"], Example(row["video_id"], row["label"],
                                                               row.get("description") or "", row.get("cover")))
            video.keyframes += row.get("keyframes") or []
    return sorted(videos.values(), key=lambda e: e.video_id)


def split(videos: list[Example], test_fraction: float) -> tuple[list[Example], list[Example]]:
    """(train, test): per category, the videos ordered by a hash of their id, the first `test_fraction` (at least
    one, when the category has two or more) held out."""
    train, test = [], []
    for label in sorted({v.label for v in videos}):
        ordered = sorted((v for v in videos if v.label == label),
                         key=lambda v: hashlib.sha1(v.video_id.encode()).hexdigest())
        held = max(1, round(len(ordered) * test_fraction)) if len(ordered) > 1 else 0
        test += ordered[:held]
        train += ordered[held:]
    return train, test


def features(videos: list[Example], store: Store, settings: Settings):
    """Each video's frozen embeddings, concatenated: description, then (with an image model) cover and keyframes'
    mean (zeros where a video has no cover or keyframe). Returns (a float32 tensor, what each part is)."""
    import torch
    from PIL import Image

    from lectern import models
    from lectern.clip_filter import embed_images

    text = torch.tensor(models.embedder(settings.embedding_model).encode(
        [v.description or "" for v in videos], normalize_embeddings=True), dtype=torch.float32)
    parts = {"text": settings.embedding_model}
    if not settings.caption_score_model:
        return text, parts
    processor, encoder = models.image_text_model(settings.caption_score_model, "cpu")

    def embedded(keys: list[str]):
        images = [Image.open(io.BytesIO(store.get_bytes(key))).convert("RGB") for key in keys]
        return embed_images(processor, encoder, images, "cpu")

    with torch.inference_mode():
        covers = [embedded([v.cover])[0] if v.cover else None for v in videos]
        frames = [embedded(v.keyframes).mean(0) if v.keyframes else None for v in videos]
    width = next((vector.shape[0] for vector in covers + frames if vector is not None), 0)

    def stacked(vectors):  # zeros where a video has none
        return torch.stack([torch.zeros(width) if vector is None else vector for vector in vectors])

    parts.update(cover=settings.caption_score_model, keyframes=settings.caption_score_model)
    return torch.cat([text, stacked(covers), stacked(frames)], dim=1), parts


def classifier(inputs: int, categories: int, hidden: int):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, categories))


def report(labels: list[str], predicted: list[str], categories: list[str], train: list[Example]) -> dict:
    per_category = {}
    for category in categories:
        rows = [(t, p) for t, p in zip(labels, predicted) if t == category]
        correct = sum(t == p for t, p in rows)
        per_category[category] = {"train": sum(v.label == category for v in train), "test": len(rows),
                                  "correct": correct, "accuracy": round(correct / len(rows), 4) if rows else None}
    correct = sum(t == p for t, p in zip(labels, predicted))
    return {"categories": per_category,
            "overall": {"test": len(labels), "correct": correct,
                        "accuracy": round(correct / len(labels), 4) if labels else None},
            "chance": round(1 / len(categories), 4) if categories else None}


def train(settings: Settings, release: str, epochs: int = 300, test_fraction: float = 0.2, hidden: int = 64,
          seed: int = 0) -> dict:
    """Train on the release's training videos, evaluate on the held-out ones, save model and report; returns it."""
    import torch

    store = store_from_settings(settings)
    train_videos, test_videos = split(examples(store, release), test_fraction)
    if not train_videos or not test_videos:
        raise ValueError(f"release {release!r}: too few labelled videos to train and hold some out")
    categories = sorted({v.label for v in train_videos})
    inputs, parts = features(train_videos + test_videos, store, settings)
    train_x, test_x = inputs[:len(train_videos)], inputs[len(train_videos):]
    targets = torch.tensor([categories.index(v.label) for v in train_videos])
    torch.manual_seed(seed)
    model = classifier(inputs.shape[1], len(categories), hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for epoch in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(train_x), targets)
        loss.backward()
        optimiser.step()
        if (epoch + 1) % max(1, epochs // 5) == 0:
            log.info("baseline %s: epoch %d/%d, training loss %.4f", release, epoch + 1, epochs, loss.item())
    result = {"release": release, "features": parts, "epochs": epochs, "hidden": hidden, "test_fraction": test_fraction,
              "final_training_loss": round(loss.item(), 4),
              **_evaluated(model, test_x, test_videos, categories, train_videos)}
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    result["model"] = store.put_bytes(Keys.baseline(release, "model.pt"), buffer.getvalue())
    store.put_json(Keys.baseline(release, "model.json"), {"categories": categories, "inputs": inputs.shape[1],
                                                          "hidden": hidden, "features": parts,
                                                          "test_fraction": test_fraction})
    store.put_json(Keys.baseline(release, "report.json"), result)
    return result


def evaluate(settings: Settings, release: str) -> dict:
    """The saved model of `release` on its held-out videos (the same split as training)."""
    import torch

    store = store_from_settings(settings)
    meta = store.get_json(Keys.baseline(release, "model.json"))
    train_videos, test_videos = split(examples(store, release), meta["test_fraction"])
    model = classifier(meta["inputs"], len(meta["categories"]), meta["hidden"])
    model.load_state_dict(torch.load(io.BytesIO(store.get_bytes(Keys.baseline(release, "model.pt"))),
                                     weights_only=True))
    test_x, _ = features(test_videos, store, settings)
    return {"release": release, **_evaluated(model, test_x, test_videos, meta["categories"], train_videos)}


def _evaluated(model, test_x, test_videos: list[Example], categories: list[str], train_videos: list[Example]) -> dict:
    import torch

    model.eval()
    with torch.inference_mode():
        predicted = [categories[i] for i in model(test_x).argmax(dim=1).tolist()]
    return report([v.label for v in test_videos], predicted, categories, train_videos)


def format_report(result: dict) -> str:
    lines = [f"{'category':<24}{'train':>7}{'test':>7}{'accuracy':>10}"]
    for category, entry in result["categories"].items():
        accuracy = "-" if entry["accuracy"] is None else f"{entry['accuracy']:.2f}"
        lines.append(f"{category:<24}{entry['train']:>7}{entry['test']:>7}{accuracy:>10}")
    overall = result["overall"]
    lines.append(f"{'overall':<24}{'':>7}{overall['test']:>7}{overall['accuracy']:>10.2f}   (chance "
                 f"{result['chance']:.2f})")
    return "\n".join(lines)
