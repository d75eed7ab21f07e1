"""schemathesis against the admin API's own OpenAPI description (issue 7, item 4).

The app runs on a real loopback port (aiohttp's TestServer); `schemathesis run` fuzzes every
operation of `/api/v1/openapi.json` with the admin bearer token over HTTP. Checks: no 5xx and
responses that conform to the schema (status codes, content types, bodies).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, Service

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


async def _fuzz(
    service: Service, tmp_path: Path, *, max_examples: int, max_time: int, phases: str
) -> dict[str, Any]:
    if not SCHEMATHESIS.exists():
        pytest.fail(f"schemathesis is not installed in this venv ({SCHEMATHESIS})")
    base = str(service.client.make_url("")).rstrip("/")
    report = tmp_path / "schemathesis.ndjson"
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--max-time",
        str(max_time),
        "--seed",
        os.environ.get("FUZZ_SEED", "7"),
        "--phases",
        phases,
        "--workers",
        "1",
        "--no-color",
        "--warnings",
        "off",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    print(text)
    generated = re.search(r"(\d+) generated", text)
    assert generated is not None, text[-6000:]
    assert int(generated.group(1)) > 0
    return {"returncode": process.returncode, "output": text, "cases": int(generated.group(1))}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_admin_api_fuzz_fast(service: Service, tmp_path: Path) -> None:
    result = await _fuzz(service, tmp_path, max_examples=5, max_time=30, phases="coverage,fuzzing")
    assert result["returncode"] == 0, result["output"][-6000:]


@pytest.mark.slow
async def test_admin_api_fuzz_large(service: Service, tmp_path: Path) -> None:
    result = await _fuzz(
        service,
        tmp_path,
        max_examples=300,
        max_time=int(os.environ.get("FUZZ_MAX_TIME", "900")),
        phases="examples,coverage,fuzzing,stateful",
    )
    assert result["returncode"] == 0, result["output"][-6000:]
