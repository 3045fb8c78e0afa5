"""Schemathesis over the OpenAPI document of the in-process app: every operation it
documents (routes added later are covered by the same test) gets schema-valid and
schema-invalid requests; 0 answers with status 500 (503 only for a hub out of reach, as
every hub is here), 0 statuses, headers or bodies that
differ from the document, 0 schema-valid requests answered 422.

The home is a temporary MODELPORT_HOME and every hub a closed local port (conftest).
``MODELPORT_FAULT_API_EXAMPLES`` sets the requests per operation and mode (default 25).
"""

from __future__ import annotations

import os

import pytest

from tests.faults.campaign import fuzz_openapi

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("MODELPORT_FAULT_API_EXAMPLES", "25"))


def test_every_documented_operation_answers_as_documented() -> None:
    from modelport.server.app import create_app

    done = fuzz_openapi(create_app(), examples=EXAMPLES)
    assert not done.failures, "\n\n".join(done.failures.values())
    assert len(done.cases) >= 9, done.cases  # every operation of the document was reached
    assert all(sent > 0 for sent in done.cases.values()), done.cases
    # The only server-side status: 503, a hub out of reach (every hub here is a closed port).
    assert not [status for status in done.statuses if status >= 500 and status != 503], (
        done.statuses
    )
