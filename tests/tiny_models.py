"""Tiny random models for every supported task, built with transformers in seconds."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "hello",
    "world",
    "paris",
    "is",
    "capital",
    "of",
    "france",
    "who",
    "wrote",
    "this",
    "book",
    "ada",
    "lovelace",
    "lives",
    "in",
    "london",
    "berlin",
    "apple",
    "google",
    "a",
    "an",
    "and",
    "to",
    "river",
    "bank",
    "today",
    "near",
    "good",
    "bad",
    "great",
    "terrible",
    "movie",
    "was",
    "it",
]


def _vocab_file(folder: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'")
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = list(dict.fromkeys(specials + WORDS + letters + pieces))
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def bert_tokenizer(folder: Path) -> object:
    """A WordPiece tokenizer over a small vocabulary, saved as tokenizer.json."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab_file=str(_vocab_file(folder)), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _bert_config(vocab_size: int, **kwargs: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        **kwargs,
    )


def build_encoder(folder: Path, task: str) -> Path:
    """A tiny BERT for an encoder task, with its tokenizer (and ST files for embeddings)."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = bert_tokenizer(folder)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    if task == "sentence-similarity":
        model = transformers.BertModel(_bert_config(vocab))
        model.save_pretrained(str(folder))
        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {
                        "idx": 0,
                        "name": "0",
                        "path": "",
                        "type": "sentence_transformers.models.Transformer",
                    },
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                    {
                        "idx": 2,
                        "name": "2",
                        "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize",
                    },
                ]
            )
        )
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": 32,
                    "pooling_mode_cls_token": False,
                    "pooling_mode_mean_tokens": True,
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                }
            )
        )
        (folder / "2_Normalize").mkdir()
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 64, "do_lower_case": False})
        )
        return folder
    labels = {
        "text-classification": ["negative", "neutral", "positive"],
        "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    }.get(task)
    kwargs: dict[str, object] = {}
    if labels:
        kwargs = {
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    cls = {
        "text-classification": transformers.BertForSequenceClassification,
        "token-classification": transformers.BertForTokenClassification,
        "question-answering": transformers.BertForQuestionAnswering,
        "fill-mask": transformers.BertForMaskedLM,
        "feature-extraction": transformers.BertModel,
    }[task]
    model = cls(_bert_config(vocab, **kwargs))
    model.save_pretrained(str(folder))
    return folder


def bpe_tokenizer(folder: Path) -> object:
    """A byte-level BPE tokenizer trained on a few sentences, with an end-of-text token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([" ".join(WORDS)] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(str(folder))
    return fast


def build_decoder(folder: Path, kind: str = "gpt2") -> Path:
    """A tiny GPT-2 or Llama-style causal LM with a BPE tokenizer."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = bpe_tokenizer(folder)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab,
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    return folder


def build_vit(folder: Path) -> Path:
    """A tiny ViT image classifier with its image processor."""
    import torch
    import transformers

    torch.manual_seed(0)
    labels = ["cat", "dog", "bird", "fish"]
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    transformers.ViTForImageClassification(config).save_pretrained(str(folder))
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder


def build_cross_encoder(folder: Path) -> Path:
    """A tiny BERT cross-encoder: one relevance logit for a (query, passage) pair."""
    import torch
    import transformers

    torch.manual_seed(1)
    tokenizer = bert_tokenizer(folder)
    config = _bert_config(len(tokenizer), num_labels=1)  # type: ignore[arg-type]
    transformers.BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder
