"""The reviewer sync API against its OpenAPI document, checked by someone else's client.

schemathesis reads portal/web/sync-openapi.json, generates requests that
fit it (and, for the negative checks, requests that do not), sends them
over real HTTP to the sync application under gunicorn (``portal serve
--role sync``), and checks every answer against the document: no 5xx, only
documented status codes, content types, headers and bodies, schema-valid
requests accepted and schema-invalid ones refused, 405 with ``Allow`` for
methods the document does not list, and 401 for every operation that needs
a session when none is sent.

Logging in is the API's own Ed25519 challenge, signed by the enrolled
reviewer's sync key, done by a schemathesis auth provider over HTTP.

The number of generated examples per operation is small by default so that
``make test`` stays quick; set ``CSO_SCHEMATHESIS_EXAMPLES`` (e.g. 2000) for
a long run.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from portal.storage.models import ReviewerAccount
from portal.web.sync import PREFIX, login_message
from tests.conftest import ROOT, SIGNING_KEY, SYNC_KEY, DemoPortal
from tests.integration.portal_server import serve_portal

OPENAPI = ROOT / "portal" / "web" / "sync-openapi.json"
#: examples per operation and phase; the default keeps a run to about a minute
EXAMPLES = int(os.environ.get("CSO_SCHEMATHESIS_EXAMPLES", "25"))
ACCOUNT = "alice"
#: schemathesis's default answers to a request that breaks the schema
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
)


@pytest.fixture
def sync_server(demo: DemoPortal, tmp_path: Path) -> Iterator[str]:
    """``portal serve --role sync`` under gunicorn, with "alice" enrolled; yield its base URL."""
    engine = create_engine(demo.database_url)
    with Session(engine) as session, session.begin():
        session.add(
            ReviewerAccount(
                label=ACCOUNT, sync_key=str(SYNC_KEY.token), signing_key=str(SIGNING_KEY.token)
            )
        )
    engine.dispose()
    with serve_portal(demo, tmp_path, role="sync") as server:
        yield server["url"] + PREFIX


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SyncLogin:
    """A schemathesis auth provider: log in as "alice" with the challenge the API hands out."""

    base_url = ""

    def get(self, case: Any, context: Any) -> str:
        """A fresh bearer token, by the same two requests a transfer machine makes."""
        with requests.Session() as http:
            issued = http.post(f"{self.base_url}/login/challenge", json={"account": ACCOUNT})
            issued.raise_for_status()
            challenge = issued.json()["challenge"]
            signature = SYNC_KEY.sign(login_message(ACCOUNT, bytes.fromhex(challenge)))
            answer = http.post(
                f"{self.base_url}/login",
                json={"account": ACCOUNT, "challenge": challenge, "signature": _b64(signature)},
            )
            answer.raise_for_status()
            token: str = answer.json()["token"]
        return token

    def set(self, case: Any, data: str, context: Any) -> None:
        """Send the token as the document's ``session`` scheme says: a bearer token."""
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _config(base_url: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "workers": 1,
            "generation": {"mode": "all", "max-examples": EXAMPLES},
            "checks": {
                **{name: {"enabled": True} for name in CHECKS},
                # a schema-violating body that is also too large is refused for its size
                "negative_data_rejection": {"expected-statuses": [*REFUSALS, "413", "414", "431"]},
            },
            "operations": [
                {
                    # A replies bundle is a signed binary format (crypto/SPEC.md section 15)
                    # that JSON Schema cannot describe: the document says "bytes", and any
                    # bytes that are not a bundle signed by this reviewer are a 400.
                    "include-path": "/replies",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["200", "400", "401", "409", "429", "5xx"]
                        }
                    },
                }
            ],
        }
    )


@dataclass
class Outcome:
    """What a schemathesis run sent and found."""

    cases: int = 0
    failures: list[str] = field(default_factory=list)
    #: operation label -> status code -> how many answers
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def run_schemathesis(base_url: str) -> Outcome:
    """Run every phase against ``base_url``: the cases sent, their answers and the failures."""
    schema = schemathesis.openapi.from_path(OPENAPI, config=_config(base_url))
    provider = type("Login", (SyncLogin,), {"base_url": base_url})
    schema.auth().skip_for(path_regex="^/login")(provider)
    outcome = Outcome()
    failures = outcome.failures
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            outcome.cases += len(event.recorder.cases)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None and event.label:
                    outcome.statuses[event.label][interaction.response.status_code] += 1
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.label} {check.name}: {failure.title}: {failure.message}\n"
                            f"  {check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"schemathesis error: {event!r}")
        elif isinstance(event, events.EngineFinished):
            failures += [f"after the run: {failure.title}" for failure in event.failures]
    return outcome


def test_the_sync_api_keeps_to_its_openapi_document(sync_server: str) -> None:
    outcome = run_schemathesis(sync_server)
    print(f"\nschemathesis {schemathesis.__version__}: {outcome.cases} cases,"
          f" {len(outcome.failures)} failures")  # fmt: skip
    for label, counts in sorted(outcome.statuses.items()):
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert outcome.failures == [], "\n".join(sorted(set(outcome.failures)))
    # Every check passes trivially against an API that refuses everything, so make sure
    # that logging in worked and each operation a session can use answered 200 at least once
    # (a login needs a signature and a replies bundle a signed bundle: no generator finds one).
    for label in ("POST /login/challenge", "POST /logout", "GET /inbox", "POST /inbox/ack"):
        assert outcome.statuses[label][200] > 0, (label, outcome.statuses[label])


def test_answers_from_the_server_in_front_are_documented_too(sync_server: str) -> None:
    """gunicorn refuses an over-long request line itself (414, its own page): documented."""
    spec = json.loads(OPENAPI.read_text())
    answer = requests.get(f"{sync_server}/inbox?since={'1' * 5000}", timeout=30)
    assert answer.status_code == 414
    documented = spec["paths"]["/inbox"]["get"]["responses"]["414"]
    name = documented["$ref"].rsplit("/", 1)[1]
    media_type = answer.headers["Content-Type"].split(";")[0].strip()
    assert media_type in spec["components"]["responses"][name]["content"]
    wrong = requests.delete(f"{sync_server}/inbox", timeout=30)
    assert wrong.status_code == 405
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
