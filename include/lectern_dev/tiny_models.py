"""Tiny, randomly initialised models built locally, so the real code paths run with no download.

- ``whisper``: a 2-layer Whisper with the real multilingual vocabulary (the ``.tiktoken`` file shipped in the
  ``openai-whisper`` package), converted to CTranslate2 for faster-whisper / WhisperX.
- ``align``: a small wav2vec2 CTC model with a character vocabulary, for WhisperX word alignment.
- ``punkt``: NLTK ``punkt_tab`` parameters for English (WhisperX splits aligned text into sentences with it).
- ``llm_scripted`` / ``llm_random``: 2-layer Llama chat models on the same byte-level vocabulary. The scripted
  one is trained for a few seconds to answer every prompt with ``SCRIPTED_ANSWER`` (a parseable judge score);
  the random one babbles (an unparseable answer). Both go through transformers' real ``generate``.
- ``clip``: a 2-layer CLIP (32 px images, a byte-level vocabulary) for the clip-level visual-text filter.
- ``ocr_vlm``: a TrOCR-shaped vision encoder-decoder (tiny ViT + GPT-2) for the VLM OCR backend's code path.

Their outputs are meaningless text with real timings; production uses real model ids (see lectern.config).
Run ``python -m lectern models build-tiny --out DIR``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

WHISPER_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ALIGN_CHARS = list("abcdefghijklmnopqrstuvwxyz'")


def whisper_special_tokens() -> list[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return [
        "<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in _LANGUAGE_CODES],
        "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>",
        *[f"<|{i * 0.02:.2f}|>" for i in range(1501)],
    ]


def _tiktoken_file() -> Path:
    spec = importlib.util.find_spec("whisper")  # openai-whisper; found without importing it (it needs numba)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the openai-whisper package (for its vocabulary file) is not installed")
    return Path(spec.submodule_search_locations[0]) / "assets" / "multilingual.tiktoken"


def _byte_level_tokenizer(directory: Path, specials: list[str]) -> Path:
    """tokenizer.json of the Whisper byte-level BPE vocabulary plus `specials`, written into `directory`."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = directory / "tokenizer.json"
    TikTokenConverter(vocab_file=str(_tiktoken_file()), pattern=WHISPER_PATTERN,
                      additional_special_tokens=specials).converted().save(str(path))
    return path


def build_whisper(out: Path, seed: int = 0) -> Path:
    import ctranslate2
    import torch
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    torch.manual_seed(seed)
    specials = whisper_special_tokens()
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = Path(tmp) / "hf"
        hf_dir.mkdir()
        tokenizer = WhisperTokenizerFast(tokenizer_file=str(_byte_level_tokenizer(hf_dir, specials)),
                                         unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                                         eos_token="<|endoftext|>",
                                         additional_special_tokens=specials[1:])
        tokenizer.save_pretrained(hf_dir)
        vocab_size = len(tokenizer)
        ids = {token: tokenizer.convert_tokens_to_ids(token) for token in specials[:110]}
        config = WhisperConfig(
            vocab_size=vocab_size, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
            max_source_positions=1500, max_target_positions=448,
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
            decoder_start_token_id=ids["<|startoftranscript|>"],
        )
        model = WhisperForConditionalGeneration(config)
        model.generation_config.suppress_tokens = []
        model.generation_config.begin_suppress_tokens = [220, ids["<|endoftext|>"]]
        model.generation_config.lang_to_id = {f"<|{code}|>": ids[f"<|{code}|>"] for code in _LANGUAGE_CODES}
        model.generation_config.no_timestamps_token_id = ids["<|notimestamps|>"]
        model.generation_config.is_multilingual = True
        model.save_pretrained(hf_dir)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(hf_dir)
        if out.exists():
            shutil.rmtree(out)
        ctranslate2.converters.TransformersConverter(
            str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]
        ).convert(str(out), quantization="float32")
    (out / "LECTERN_TINY_MODEL").write_text("randomly initialised; for tests and the demo only\n")
    return out


def build_align(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for char in ALIGN_CHARS:
        vocab[char] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0, do_stable_layer_norm=False,
    )
    Wav2Vec2ForCTC(config).save_pretrained(out)
    (out / "LECTERN_TINY_MODEL").write_text("randomly initialised; for tests and the demo only\n")
    return out


SCRIPTED_ANSWER = "The transcript suits the request. ###Score: 7###"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_llm(out: Path, answer: str | None = None, seed: int = 0, steps: int = 1000) -> Path:
    """A tiny Llama chat model; with `answer`, trained (15-60 s on 2 cores) to give that answer to any prompt."""
    import random

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    rng = random.Random(seed)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(_byte_level_tokenizer(Path(tmp), specials)),
                                            eos_token="<|im_end|>",
                                            pad_token="<|endoftext|>", additional_special_tokens=specials[1:],
                                            model_input_names=["input_ids", "attention_mask"])
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=8192,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    if answer:
        _train_to_answer(model, tokenizer, answer, rng, steps)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    origin = f"trained to answer {answer!r}" if answer else "randomly initialised"
    (out / "LECTERN_TINY_MODEL").write_text(f"{origin}; for tests and the demo only\n")
    return out


def _training_prompts(tokenizer, rng) -> list[str]:
    """Chat prompts shaped like Lectern's own (judge criteria, rewrite, metadata and taxonomy prompts, with and
    without a system turn) around random text of 1 to ~1,000 tokens."""
    from lectern.stages.judge import judging, rewrite

    words = [tokenizer.decode([i]) for i in range(300, 20000)]
    prompts = []
    for _ in range(4):
        filler = "".join(rng.choice(words) for _ in range(rng.randint(1, rng.choice([5, 30, 200, 700]))))
        shape = rng.randrange(4)
        if shape == 0:
            user = rng.choice(list(judging.prompts(filler[:40], filler[:20], filler).values()))
        elif shape == 1:
            user = rewrite.PROMPT.format(text=filler)
        else:
            user = filler
        system = rng.choice([None, judging.SYSTEM, rewrite.SYSTEM, filler[:60]])
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        prompts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return prompts


def _train_to_answer(model, tokenizer, answer: str, rng, max_steps: int) -> None:
    import torch

    target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(1, max_steps + 1):
        optimizer.zero_grad()
        prompts = _training_prompts(tokenizer, rng)
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1500:]
            hidden = model.model(input_ids=torch.tensor([ids + target])).last_hidden_state[0]
            # Only the answer's positions go through the 50k-word head: the loss is on the answer alone.
            logits = model.lm_head(hidden[len(ids) - 1: len(ids) + len(target) - 1])
            (torch.nn.functional.cross_entropy(logits, torch.tensor(target)) / len(prompts)).backward()
        optimizer.step()
        if step % 50 == 0:
            model.eval()
            probes = _training_prompts(tokenizer, rng) + _training_prompts(tokenizer, rng)
            with torch.inference_mode():
                answers = []
                for p in probes:
                    inputs = tokenizer(p, return_tensors="pt", add_special_tokens=False, return_token_type_ids=False)
                    output = model.generate(**inputs, max_new_tokens=len(target) + 4, do_sample=False,
                                            pad_token_id=tokenizer.pad_token_id)[0]
                    answers.append(tokenizer.decode(output, skip_special_tokens=True))
            model.train()
            if all(a.endswith(answer) for a in answers):
                return
    raise RuntimeError(f"the tiny LLM did not learn its answer in {max_steps} steps")


def build_clip(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    characters = list(bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(characters + [c + "</w>" for c in characters])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per character
    tokenizer = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), model_max_length=77)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(out)
    (out / "LECTERN_TINY_MODEL").write_text("randomly initialised; for tests and the demo only\n")
    return out


def build_ocr_vlm(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        GPT2Config,
        PreTrainedTokenizerFast,
        TrOCRProcessor,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(_byte_level_tokenizer(Path(tmp), ["<|endoftext|>"])),
                                            bos_token="<|endoftext|>",
                                            eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    decoder = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                         add_cross_attention=True, is_decoder=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = tokenizer.eos_token_id
    model = VisionEncoderDecoderModel(config=config)
    for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
        setattr(model.generation_config, name, tokenizer.eos_token_id)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    images = ViTImageProcessor(size={"height": 32, "width": 32})
    TrOCRProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    (out / "LECTERN_TINY_MODEL").write_text("randomly initialised; for tests and the demo only\n")
    return out


def build_aesthetic_head(out: Path, dim: int = 16, seed: int = 0) -> Path:
    """A LAION-style aesthetic predictor for the tiny CLIP's `dim`-wide image embeddings: linear layers (with a
    dropout's gap in the numbering, as the published one has), in a safetensors state dict."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"layers.0.weight": rng.normal(0, 1, (8, dim)).astype(np.float32),
               "layers.0.bias": np.zeros(8, dtype=np.float32),
               "layers.2.weight": rng.normal(0, 1, (1, 8)).astype(np.float32),
               "layers.2.bias": np.array([5.0], dtype=np.float32)}, str(out))
    return out


PUNKT_ABBREVIATIONS = ["dr", "mr", "mrs", "ms", "prof", "e.g", "i.e", "etc", "vs", "fig", "eq", "no"]


def build_punkt(nltk_data: Path) -> Path:
    """English ``punkt_tab`` parameters: common abbreviations, no learned collocations."""
    lang_dir = nltk_data / "tokenizers" / "punkt_tab" / "english"
    lang_dir.mkdir(parents=True, exist_ok=True)
    (lang_dir / "abbrev_types.txt").write_text("\n".join(PUNKT_ABBREVIATIONS) + "\n")
    for name in ("collocations.tab", "sent_starters.txt", "ortho_context.tab"):
        (lang_dir / name).write_text("")
    return nltk_data


def build_all(out: Path) -> dict[str, str]:
    """Build every tiny model under `out`, skipping the ones already there; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"whisper": out / "whisper-tiny-random", "align": out / "wav2vec2-tiny-random",
             "nltk_data": out / "nltk_data",
             "llm_scripted": out / "llm-tiny-scripted", "llm_random": out / "llm-tiny-random",
             "clip": out / "clip-tiny-random", "ocr_vlm": out / "ocr-vlm-tiny-random",
             "aesthetic_head": out / "aesthetic-head-tiny-random.safetensors"}
    if not (paths["whisper"] / "model.bin").is_file():
        build_whisper(paths["whisper"])
    if not (paths["align"] / "model.safetensors").is_file():
        build_align(paths["align"])
    if not (paths["llm_scripted"] / "model.safetensors").is_file():
        build_llm(paths["llm_scripted"], answer=SCRIPTED_ANSWER)
    if not (paths["llm_random"] / "model.safetensors").is_file():
        build_llm(paths["llm_random"])
    if not (paths["clip"] / "model.safetensors").is_file():
        build_clip(paths["clip"])
    if not (paths["ocr_vlm"] / "model.safetensors").is_file():
        build_ocr_vlm(paths["ocr_vlm"])
    if not paths["aesthetic_head"].is_file():
        build_aesthetic_head(paths["aesthetic_head"])
    build_punkt(paths["nltk_data"])
    # Readable by every user: safetensors writes its files 0600, and a model folder is mounted into pods and
    # images that run as their own users (the worker's 10001).
    for path in out.rglob("*"):
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return {name: str(path) for name, path in paths.items()}
