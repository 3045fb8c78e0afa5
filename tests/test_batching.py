"""Dynamic batching on a real tiny encoder: shared batches, fairness, the queue bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from modelport.errors import ServerBusyError
from tests import tiny_models

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> object:
    import modelport.api as api

    folder = tiny_models.build_encoder(
        tmp_path_factory.mktemp("enc") / "enc", "sentence-similarity"
    )
    return api.load_model(str(folder))


def _texts(n: int, words: int = 6) -> list[str]:
    return [" ".join(["the quick brown fox"] * (1 + i % words)) + f" {i}" for i in range(n)]


def test_concurrent_requests_share_batches_and_get_their_own_answers(model: object) -> None:
    from modelport.server.batching import Batcher

    batcher = Batcher("enc", model, max_batch_tokens=4096, wait_s=0.02, max_queue=1000)  # type: ignore[arg-type]
    texts = _texts(40)
    expected = model(texts)  # type: ignore[operator]

    async def main() -> list[list[object]]:
        counts = [[len(t.split()) + 2] for t in texts]
        return await asyncio.gather(
            *(batcher.submit([t], c) for t, c in zip(texts, counts, strict=True))
        )

    try:
        answers = asyncio.run(main())
    finally:
        batcher.close()
    np.testing.assert_allclose(np.stack([a[0] for a in answers]), expected, atol=1e-5)
    assert batcher.batches < 40


def test_a_short_request_does_not_wait_for_a_long_one_to_finish(model: object) -> None:
    from modelport.server.batching import Batcher

    # A budget of about 40 tokens per batch: the long request needs many batches.
    batcher = Batcher("enc", model, max_batch_tokens=40, wait_s=0.0, max_queue=5000)  # type: ignore[arg-type]
    long_texts = _texts(2000)
    finished: list[str] = []

    async def main() -> None:
        async def long() -> None:
            await batcher.submit(long_texts, [10] * len(long_texts))
            finished.append("long")

        async def short() -> None:
            # Arrives once the long one is being worked through (not after a fixed sleep:
            # on a fast machine the long one could be done by then).
            while not 0 < batcher.waiting < len(long_texts):
                await asyncio.sleep(0.0005)
            await batcher.submit(["hello world"], [4])
            finished.append("short")

        await asyncio.gather(long(), short())

    try:
        asyncio.run(main())
    finally:
        batcher.close()
    assert finished == ["short", "long"]


def test_a_full_queue_refuses_and_an_abandoned_request_leaves_it(model: object) -> None:
    from modelport.server.batching import Batcher

    batcher = Batcher("enc", model, max_batch_tokens=20, wait_s=0.0, max_queue=300)  # type: ignore[arg-type]
    texts = _texts(300)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(texts, [10] * 300))
        await asyncio.sleep(0.01)
        assert batcher.waiting > 0
        with pytest.raises(ServerBusyError) as refused:  # waiting + 300 > max_queue
            await batcher.submit(texts, [10] * 300)
        assert refused.value.http_status == 429
        first.cancel()  # the client went away: its inputs leave the queue
        with pytest.raises(asyncio.CancelledError):
            await first
        assert batcher.waiting == 0
        assert len(await batcher.submit(texts[:50], [10] * 50)) == 50

    try:
        asyncio.run(main())
    finally:
        batcher.close()


def test_a_model_error_reaches_every_request_of_the_batch(tmp_path: Path, model: object) -> None:
    from modelport.errors import InvalidValueError
    from modelport.server.batching import Batcher

    batcher = Batcher("enc", model, max_batch_tokens=4096, wait_s=0.01, max_queue=100)  # type: ignore[arg-type]

    async def main() -> None:
        with pytest.raises(InvalidValueError):
            # An option the pipeline refuses fails the requests that asked for it.
            await batcher.submit(["a"], [3], pooling="nonsense", batch_size=0)
        assert len(await batcher.submit(["still works"], [4])) == 1

    try:
        asyncio.run(main())
    finally:
        batcher.close()
