"""A static HTML viewer of a release's samples: keyframes inline with their text, in order, like the paper's
notebook. ``releases/{name}/viewer.html`` references the keyframes by their store keys, relative to the release
folder, so it opens from a local store directory or from a bucket served over HTTP.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
section.sample { border: 1px solid #ccc; border-radius: 6px; padding: 1rem; margin-bottom: 2rem; }
section.sample h2 { font-size: 1rem; color: #555; margin-top: 0; }
figure { margin: 0.5rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .meta { font-size: 0.8rem; color: #777; }
p.text { background: #f6f8fa; padding: 0.5rem; border-radius: 4px; }
details { font-size: 0.85rem; color: #555; }
"""


def render_samples(release: str, samples: list[dict], image_prefix: str = "../../") -> str:
    """One page: each sample's images and texts in their interleaved order, OCR text folded under its text."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Lectern release "
             f"{html.escape(release)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Release {html.escape(release)}</h1>",
             f"<p class='meta'>{len(samples)} samples shown</p>"]
    for n, sample in enumerate(samples, start=1):
        parts.append(f"<section class='sample' id='sample-{n}'><h2>Sample {n}: {sample['image_num']} images, "
                     f"{sample['text_num']} ASR tokens, {sample['token_num']} tokens</h2>")
        for image, text, text_ocr, meta in zip(sample["images"], sample["texts"], sample["text_ocr_list"],
                                               sample["metadata"]):
            if image is not None:
                caption = f"{meta.get('vid', '')} at {meta.get('time', '')} s"
                # Keys hold '#' and '@' (published names like vid@0.0_10.0#1.jpg): quote them for a URL.
                parts.append(f"<figure><img src='{html.escape(image_prefix + quote(image))}' "
                             f"alt='{html.escape(caption)}' "
                             f"loading='lazy'><figcaption>{html.escape(caption)}</figcaption></figure>")
            else:
                parts.append(f"<p class='text'>{html.escape(text or '')}</p>")
                ocr = (text_ocr or "").removesuffix(text or "").strip()
                if ocr:
                    parts.append(f"<details><summary>OCR</summary>{html.escape(ocr)}</details>")
        parts.append(f"<details><summary>metadata</summary><pre>{html.escape(json.dumps(sample['metadata'], indent=1))}"
                     "</pre></details></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
