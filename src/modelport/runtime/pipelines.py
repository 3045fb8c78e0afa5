"""Task pipelines over an ONNX Runtime session: tokenizers + numpy, no torch.

Each pipeline turns user inputs into the session's arrays and its outputs into answers:
embeddings (with the model's own pooling and normalization), classification with labels,
token classification with entity grouping, extractive QA spans, fill-mask top-k, greedy
and sampled generation with a KV cache, and image classification from a file.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelport.errors import InvalidValueError, MissingExtraError
from modelport.runtime.chat import ChatTemplate
from modelport.runtime.generation import Completion, GenerationDelta, TextGenerator
from modelport.runtime.spec import ModelSpec, read_json
from modelport.runtime.text import TextTokenizer

__all__ = ["PIPELINES", "Pipeline", "make_pipeline"]

SUPPORTED_TASKS = (
    "feature-extraction",
    "sentence-similarity",
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "text-generation",
    "image-classification",
    "tensors",
)


def _np() -> Any:
    try:
        import numpy
    except ImportError:
        raise MissingExtraError("run", feature="Running models") from None
    return numpy


def _softmax(x: Any, axis: int = -1) -> Any:
    np = _np()
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


class Pipeline(abc.ABC):
    """Pre-processing, one session run, post-processing."""

    task = ""

    def __init__(self, session: Any, folder: Path, spec: ModelSpec) -> None:
        self.session = session
        self.folder = folder
        self.spec = spec
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    @abc.abstractmethod
    def __call__(self, inputs: Any, **options: Any) -> Any:
        """The task's answer for the inputs."""

    def labels(self) -> dict[int, str]:
        """Class labels by id, as the spec names them (empty when it names none)."""
        labels = self.spec.modelport.get("labels")
        if isinstance(labels, dict):
            return {int(k): str(v) for k, v in labels.items()}
        if isinstance(labels, list):
            return dict(enumerate(str(v) for v in labels))
        for output in self.spec.outputs:
            if output.labels:
                return dict(enumerate(output.labels))
        return {}


#: Texts run at once. A list is sorted by length and run in batches of this size, each
#: padded to its own longest text: padding everything to the longest of a long list costs
#: memory (attention grows with the square of the length) and time.
BATCH_SIZE = 32


class _TextPipeline(Pipeline):
    def __init__(self, session: Any, folder: Path, spec: ModelSpec) -> None:
        super().__init__(session, folder, spec)
        max_length = spec.preprocessing.max_length or spec.modelport.get("max_seq_length")
        self.tokenizer = TextTokenizer(folder, max_length=max_length)

    def _feed(self, encodings: Sequence[Any]) -> dict[str, Any]:
        np = _np()
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        if "position_ids" in self.input_names:
            feed["position_ids"] = np.broadcast_to(np.arange(ids.shape[1]), ids.shape).astype(
                np.int64
            )
        return {k: v for k, v in feed.items() if k in self.input_names}

    def _each(
        self, texts: list[str], run: Callable[[list[Any]], Sequence[Any]], batch_size: int
    ) -> list[Any]:
        """``run`` over length-sorted batches of encodings; one result per text, in order."""
        if batch_size < 1:
            raise InvalidValueError("batch_size must be at least 1.")
        encodings = (
            [_TokenIds(list(t)) for t in texts]
            if texts and isinstance(texts[0], list)
            else self.tokenizer.encode_unpadded(texts)
        )
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        results: list[Any] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = self.tokenizer.pad([encodings[i] for i in chosen])
            for index, value in zip(chosen, run(batch), strict=True):
                results[index] = value
        return results

    @staticmethod
    def _texts(inputs: Any) -> tuple[list[str], bool]:
        if isinstance(inputs, str):
            return [inputs], True
        if isinstance(inputs, Sequence) and inputs and all(isinstance(t, str) for t in inputs):
            return list(inputs), False
        raise InvalidValueError("This model takes a text or a list of texts.")


class _TokenIds:
    """Token ids a caller gave instead of text, shaped like a tokenizers ``Encoding``."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.attention_mask = [1] * len(ids)
        self.type_ids = [0] * len(ids)

    def pad(self, length: int, *, pad_id: int = 0, pad_token: str = "") -> None:
        extra = length - len(self.ids)
        if extra > 0:
            self.ids = self.ids + [pad_id] * extra
            self.attention_mask = self.attention_mask + [0] * extra
            self.type_ids = self.type_ids + [0] * extra


class FeatureExtraction(_TextPipeline):
    """Sentence embeddings, pooled and normalized as the model's own files say."""

    task = "feature-extraction"

    def __call__(self, inputs: Any, *, batch_size: int = BATCH_SIZE, **options: Any) -> Any:
        """Embeddings of a text, texts, or token-id lists (the model's own token ids)."""
        np = _np()
        if (
            isinstance(inputs, list)
            and inputs
            and all(isinstance(t, list) and all(isinstance(i, int) for i in t) for t in inputs)
        ):
            vocab = self.tokenizer.tokenizer.get_vocab_size()
            if any(not 0 <= i < vocab for t in inputs for i in t) or not all(inputs):
                raise InvalidValueError(
                    f"Token ids must be non-empty lists of ids below {vocab}.", param="input"
                )
            return np.stack(self._each(inputs, self._embed, batch_size))
        texts, single = self._texts(inputs)
        vectors = np.stack(self._each(texts, self._embed, batch_size))
        return vectors[0] if single else vectors

    def _embed(self, encodings: list[Any]) -> Any:
        np = _np()
        feed = self._feed(encodings)
        outputs = dict(zip(self.output_names, self.session.run(None, feed), strict=True))
        if "sentence_embedding" in outputs:
            pooled = outputs["sentence_embedding"]
        else:
            hidden = outputs.get("last_hidden_state", outputs.get("token_embeddings"))
            if hidden is None:
                hidden = next(iter(outputs.values()))
            pooled = self._pool(hidden, feed["attention_mask"])
        if self.spec.modelport.get("normalize"):
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.clip(norms, 1e-12, None)
        return pooled.astype(np.float32)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        np = _np()
        modes = self.spec.modelport.get("pooling") or ["mean"]
        m = mask[..., None].astype(hidden.dtype)
        parts = []
        for mode in modes:
            if mode == "cls":
                parts.append(hidden[:, 0])
            elif mode == "max":
                masked = np.where(m > 0, hidden, -1e9)
                parts.append(masked.max(axis=1))
            elif mode in ("mean", "mean_sqrt_len"):
                summed = (hidden * m).sum(axis=1)
                counts = np.clip(m.sum(axis=1), 1e-9, None)
                parts.append(summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts))
            elif mode == "lasttoken":
                last = mask.sum(axis=1) - 1
                parts.append(hidden[np.arange(hidden.shape[0]), last])
            else:
                raise InvalidValueError(f"Unsupported pooling mode {mode!r} in modelport.yml.")
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class TextClassification(_TextPipeline):
    """Labels with scores, best first."""

    task = "text-classification"

    def __call__(
        self,
        inputs: Any,
        *,
        top_k: int | None = 1,
        batch_size: int = BATCH_SIZE,
        function_to_apply: str | None = None,
        **options: Any,
    ) -> Any:
        """Labels of a text, texts, or text pairs (``[query, passage]``, as cross-encoders
        score them); ``function_to_apply`` is sigmoid, softmax or none (raw logits)."""
        np = _np()
        texts, single = self._pairs(inputs)
        logits = np.stack(
            self._each(texts, lambda b: self.session.run(None, self._feed(b))[0], batch_size)
        )
        multi = self.spec.modelport.get("problem_type") == "multi_label_classification"
        if function_to_apply not in (None, "sigmoid", "softmax", "none"):
            raise InvalidValueError(
                "function_to_apply must be sigmoid, softmax or none.", param="function_to_apply"
            )
        if function_to_apply is None:
            function_to_apply = "sigmoid" if multi or logits.shape[-1] == 1 else "softmax"
        if function_to_apply == "sigmoid":
            scores = 1 / (1 + np.exp(-logits))
        elif function_to_apply == "softmax":
            scores = _softmax(logits)
        else:
            scores = logits
        labels = self.labels()
        results = []
        for row in scores:
            order = np.argsort(-row)
            if top_k is not None:
                order = order[:top_k]
            results.append(
                [
                    {"label": labels.get(int(i), f"LABEL_{int(i)}"), "score": float(row[i])}
                    for i in order
                ]
            )
        return results[0] if single else results

    def _pairs(self, inputs: Any) -> tuple[list[Any], bool]:
        """Texts, or ``[first, second]`` pairs as tuples the tokenizer encodes together."""
        is_pair = (
            isinstance(inputs, list | tuple)
            and len(inputs) == 2
            and all(isinstance(t, str) for t in inputs)
            and not isinstance(inputs, list)
        )
        if is_pair:
            return [tuple(inputs)], True
        if (
            isinstance(inputs, list)
            and inputs
            and all(
                isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p)
                for p in inputs
            )
        ):
            return [tuple(p) for p in inputs], False
        return self._texts(inputs)


class TokenClassification(_TextPipeline):
    """Entities, grouped from B-/I- tags with their character spans."""

    task = "token-classification"

    def __call__(
        self,
        inputs: Any,
        *,
        aggregation: str = "simple",
        batch_size: int = BATCH_SIZE,
        **options: Any,
    ) -> Any:
        texts, single = self._texts(inputs)

        def run(batch: list[Any]) -> list[tuple[Any, Any]]:
            probs = _softmax(self.session.run(None, self._feed(batch))[0])
            return list(zip(batch, probs, strict=True))

        labels = self.labels()
        results = []
        for text, (enc, row) in zip(texts, self._each(texts, run, batch_size), strict=True):
            tokens = []
            for i, (special, mask) in enumerate(
                zip(enc.special_tokens_mask, enc.attention_mask, strict=True)
            ):
                if special or not mask:
                    continue
                best = int(row[i].argmax())
                start, end = enc.offsets[i]
                tokens.append(
                    {
                        "entity": labels.get(best, f"LABEL_{best}"),
                        "score": float(row[i][best]),
                        "index": i,
                        "word": text[start:end],
                        "start": int(start),
                        "end": int(end),
                    }
                )
            results.append(tokens if aggregation == "none" else self._group(text, tokens))
        return results[0] if single else results

    @staticmethod
    def _group(text: str, tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for token in tokens:
            label = token["entity"]
            if label == "O":
                current = None
                continue
            prefix, _, tag = label.partition("-") if "-" in label else ("", "", label)
            if current is not None and current["entity_group"] == tag and prefix != "B":
                current["end"] = token["end"]
                current["scores"].append(token["score"])
                continue
            current = {
                "entity_group": tag,
                "scores": [token["score"]],
                "start": token["start"],
                "end": token["end"],
            }
            groups.append(current)
        return [
            {
                "entity_group": g["entity_group"],
                "score": sum(g["scores"]) / len(g["scores"]),
                "word": text[g["start"] : g["end"]],
                "start": g["start"],
                "end": g["end"],
            }
            for g in groups
        ]


class QuestionAnswering(_TextPipeline):
    """The best answer span in a context."""

    task = "question-answering"

    def __call__(self, inputs: Any, *, max_answer_len: int = 15, **options: Any) -> Any:
        np = _np()
        if not isinstance(inputs, dict) or not {"question", "context"} <= set(inputs):
            raise InvalidValueError(
                'Question answering takes {"question": ..., "context": ...}.',
                hint='e.g. --input \'{"question": "Who?", "context": "Ada wrote it."}\'',
            )
        question, context = str(inputs["question"]), str(inputs["context"])
        enc = self.tokenizer.encode_pair(question, context)
        feed = self._feed([enc])
        outputs = dict(zip(self.output_names, self.session.run(None, feed), strict=True))
        start_logits = outputs["start_logits"][0]
        end_logits = outputs["end_logits"][0]
        in_context = np.array([s == 1 for s in enc.sequence_ids], dtype=bool)
        # The leading [CLS] takes part in the normalization (it stands for "no answer", as
        # in transformers) but is never chosen.
        keep = in_context.copy()
        if enc.special_tokens_mask and enc.special_tokens_mask[0]:
            keep[0] = True
        start_p = _softmax(np.where(keep, start_logits, -1e4))
        end_p = _softmax(np.where(keep, end_logits, -1e4))
        start_p = np.where(in_context, start_p, 0.0)
        end_p = np.where(in_context, end_p, 0.0)
        scores = np.triu(np.outer(start_p, end_p))
        scores = np.tril(scores, max_answer_len - 1)
        start, end = np.unravel_index(int(scores.argmax()), scores.shape)
        char_start, char_end = enc.offsets[start][0], enc.offsets[end][1]
        return {
            "answer": context[char_start:char_end],
            "score": float(scores[start, end]),
            "start": int(char_start),
            "end": int(char_end),
        }


class FillMask(_TextPipeline):
    """The likeliest tokens for the mask."""

    task = "fill-mask"

    def __call__(
        self, inputs: Any, *, top_k: int = 5, batch_size: int = BATCH_SIZE, **options: Any
    ) -> Any:
        np = _np()
        texts, single = self._texts(inputs)
        mask_id = self.tokenizer.token_id(self.tokenizer.mask_token)
        if mask_id is None:
            raise InvalidValueError("This tokenizer has no mask token.")

        def run(batch: list[Any]) -> list[tuple[Any, Any]]:
            return list(zip(batch, self.session.run(None, self._feed(batch))[0], strict=True))

        results = []
        for text, (enc, row) in zip(texts, self._each(texts, run, batch_size), strict=True):
            positions = [i for i, t in enumerate(enc.ids) if t == mask_id]
            if not positions:
                raise InvalidValueError(
                    f"{text!r} has no {self.tokenizer.mask_token} to fill.",
                    hint=f"Put {self.tokenizer.mask_token} where a word is missing.",
                )
            probs = _softmax(row[positions[0]])
            best = np.argsort(-probs)[:top_k]
            results.append(
                [
                    {
                        "token": int(t),
                        "token_str": self.tokenizer.decode([int(t)]).strip()
                        or self.tokenizer.id_to_token(int(t)),
                        "score": float(probs[t]),
                        "sequence": self.tokenizer.decode(
                            [
                                int(t) if i == positions[0] else x
                                for i, x in enumerate(enc.ids)
                                if enc.attention_mask[i]
                            ]
                        ),
                    }
                    for t in best
                ]
            )
        return results[0] if single else results


class TextGeneration(Pipeline):
    """Greedy or sampled generation that feeds the KV cache back in, streamed or whole."""

    task = "text-generation"

    def __init__(self, session: Any, folder: Path, spec: ModelSpec) -> None:
        super().__init__(session, folder, spec)
        self.generator = TextGenerator(session, folder)
        self.past_inputs = self.generator.past_inputs
        self.chat_template = ChatTemplate.from_folder(folder, name=spec.name or folder.name)

    @property
    def context_length(self) -> int | None:
        """The most tokens (prompt + new) the model has positions for, if it says."""
        return self.generator.context_length

    def count_tokens(self, text: str, *, add_special_tokens: bool = True) -> int:
        """How many tokens a text is as a prompt."""
        return self.generator.count_tokens(text, add_special_tokens=add_special_tokens)

    def render_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **variables: Any,
    ) -> str:
        """The prompt text of a conversation, rendered with the model's chat template as
        transformers' ``apply_chat_template(..., tokenize=False)`` renders it. Generate from
        it with ``add_special_tokens=False``: the template wrote them."""
        return self.chat_template.render(
            messages,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )

    def stream(self, prompt: str | Sequence[int], **options: Any) -> Iterator[GenerationDelta]:
        """The continuation of a prompt as deltas of text (options: ``TextGenerator.stream``)."""
        return self.generator.stream(prompt, **options)

    def complete(self, prompt: str | Sequence[int], **options: Any) -> Completion:
        """The whole continuation of a prompt (``stream`` joined)."""
        return self.generator.complete(prompt, **options)

    def __call__(
        self,
        inputs: Any,
        *,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        seed: int | None = None,
        **options: Any,
    ) -> Any:
        texts, single = _TextPipeline._texts(inputs)
        if do_sample and temperature <= 0:
            raise InvalidValueError("temperature must be positive when sampling.")
        outs: list[dict[str, Any]] = []
        for text in texts:
            done = self.complete(
                text,
                max_new_tokens=max_new_tokens,
                temperature=temperature if do_sample else 0.0,
                top_k=top_k,
                top_p=top_p,
                # One seed, several texts: each text its own draw, all reproducible.
                seed=None if seed is None else seed + len(outs),
            )
            new = [t for t in done.token_ids if t not in self.generator.eos_ids]
            outs.append({"generated_text": text + done.text, "new_tokens": len(new)})
        return outs[0] if single else outs

    def generate_ids(self, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation ids of prompt ids (no decoding; what tests compare)."""
        return self.generator.greedy_ids(prompt_ids, max_new_tokens)


class ImageClassification(Pipeline):
    """Labels for an image file, preprocessed as the model's preprocessor config says."""

    task = "image-classification"

    def __init__(self, session: Any, folder: Path, spec: ModelSpec) -> None:
        super().__init__(session, folder, spec)
        self.config = read_json(folder / "preprocessor_config.json")

    def preprocess(self, image: Any) -> Any:
        """An image (path or PIL image) as a normalized NCHW float32 array."""
        np = _np()
        try:
            from PIL import Image
        except ImportError:
            raise MissingExtraError("run", feature="Reading images") from None
        if isinstance(image, str | Path):
            try:
                image = Image.open(image)
            except (OSError, ValueError) as e:
                raise InvalidValueError(f"Cannot read the image {image}: {e}.") from None
        if not hasattr(image, "convert"):
            raise InvalidValueError(
                f"This image-classification model takes an image, not {type(image).__name__}.",
                hint="Give an image file: --file PATH.",
            )
        image = image.convert("RGB")
        c = self.config
        resample = int(c.get("resample", 2))
        size = c.get("size") or {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        if c.get("do_resize", True):
            if "height" in size and "width" in size:
                image = image.resize((int(size["width"]), int(size["height"])), resample)
            elif "shortest_edge" in size:
                edge = int(size["shortest_edge"])
                crop_pct = c.get("crop_pct")
                if crop_pct and edge < 384:
                    edge = int(edge / crop_pct)
                w, h = image.size
                scale = edge / min(w, h)
                image = image.resize((round(w * scale), round(h * scale)), resample)
                if crop_pct and int(size["shortest_edge"]) < 384:
                    image = _center_crop(
                        image, int(size["shortest_edge"]), int(size["shortest_edge"])
                    )
        if c.get("do_center_crop") and c.get("crop_size"):
            crop = c["crop_size"]
            ch, cw = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
            image = _center_crop(image, int(cw), int(ch))
        array = np.asarray(image, dtype=np.float32)
        if c.get("do_rescale", True):
            array = array * float(c.get("rescale_factor", 1 / 255))
        if c.get("do_normalize", True):
            mean = np.array(c.get("image_mean", [0.5, 0.5, 0.5]), dtype=np.float32)
            std = np.array(c.get("image_std", [0.5, 0.5, 0.5]), dtype=np.float32)
            array = (array - mean) / std
        if c.get("data_format") == "channels_last":  # TensorFlow's NHWC
            return array[None].astype(np.float32)
        return array.transpose(2, 0, 1)[None].astype(np.float32)

    def __call__(self, inputs: Any, *, top_k: int = 5, **options: Any) -> Any:
        np = _np()
        images = inputs if isinstance(inputs, list) else [inputs]
        batch = np.concatenate([self.preprocess(i) for i in images])
        name = self.input_names[0]
        logits = self.session.run(None, {name: batch})[0]
        # Some models (the zoo's) end in a softmax already: their rows are probabilities.
        already = bool(np.all(logits >= 0) and np.allclose(logits.sum(axis=-1), 1, atol=1e-3))
        probs = logits if already else _softmax(logits)
        labels = self.labels()
        results = []
        for row in probs:
            order = np.argsort(-row)[:top_k]
            results.append(
                [
                    {"label": labels.get(int(i), f"LABEL_{int(i)}"), "score": float(row[i])}
                    for i in order
                ]
            )
        return results if isinstance(inputs, list) else results[0]


class Tensors(Pipeline):
    """Arrays in, arrays out: models without a task pipeline (exported modules, zoo graphs).

    Inputs are ``{input name: nested list}``, or one nested list for a single-input model;
    outputs are ``{output name: nested list}``.
    """

    task = "tensors"

    _TYPES: ClassVar[dict[str, str]] = {
        "tensor(float)": "float32",
        "tensor(float16)": "float16",
        "tensor(double)": "float64",
        "tensor(int64)": "int64",
        "tensor(int32)": "int32",
        "tensor(int8)": "int8",
        "tensor(uint8)": "uint8",
        "tensor(bool)": "bool",
    }

    def __call__(self, inputs: Any, **options: Any) -> Any:
        np = _np()
        declared = {i.name: i for i in self.session.get_inputs()}
        if not isinstance(inputs, dict):
            if len(declared) != 1:
                raise InvalidValueError(
                    f"This model takes {len(declared)} inputs: give a JSON object keyed by "
                    + ", ".join(declared)
                    + "."
                )
            inputs = {next(iter(declared)): inputs}
        unknown = sorted(set(inputs) - set(declared))
        missing = sorted(set(declared) - set(inputs))
        if unknown or missing:
            raise InvalidValueError(
                "The inputs do not match the model's: "
                + (f"unknown {', '.join(unknown)}; " if unknown else "")
                + (f"missing {', '.join(missing)}" if missing else "").rstrip("; ")
                + ".",
                hint="Expected: "
                + ", ".join(f"{i.name} {i.type} {i.shape}" for i in declared.values()),
            )
        feed = {}
        for name, value in inputs.items():
            dtype = self._TYPES.get(declared[name].type, "float32")
            try:
                array = np.asarray(value, dtype=dtype)
            except (TypeError, ValueError) as e:
                raise InvalidValueError(f"Input {name!r} is not a {dtype} array: {e}.") from None
            shape = declared[name].shape
            if len(shape) != array.ndim or any(
                isinstance(d, int) and d != n for d, n in zip(shape, array.shape, strict=False)
            ):
                raise InvalidValueError(
                    f"Input {name!r} has shape {list(array.shape)}; the model wants {shape}."
                )
            feed[name] = array
        values = self.session.run(None, feed)
        return {n: v.tolist() for n, v in zip(self.output_names, values, strict=True)}


def _center_crop(image: Any, width: int, height: int) -> Any:
    w, h = image.size
    left = max(0, round((w - width) / 2))
    top = max(0, round((h - height) / 2))
    return image.crop((left, top, left + width, top + height))


PIPELINES: dict[str, type[Pipeline]] = {
    "feature-extraction": FeatureExtraction,
    "sentence-similarity": FeatureExtraction,
    "text-classification": TextClassification,
    "token-classification": TokenClassification,
    "question-answering": QuestionAnswering,
    "fill-mask": FillMask,
    "text-generation": TextGeneration,
    "image-classification": ImageClassification,
    "tensors": Tensors,
}


def make_pipeline(task: str, session: Any, folder: Path, spec: ModelSpec) -> Pipeline:
    """The pipeline for a task, or a refusal naming the supported tasks."""
    if task not in PIPELINES:
        raise InvalidValueError(
            f"modelport cannot run {task!r} models yet.",
            hint="Supported tasks: " + ", ".join(SUPPORTED_TASKS) + ".",
        )
    return PIPELINES[task](session, folder, spec)
