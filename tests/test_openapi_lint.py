"""Each service's OpenAPI document as other teams' tools read it: Redocly CLI's recommended rules.

The document is the one ``manage.py spectacular`` prints in a bare environment (no
``SECRET_KEY``, ``DEBUG`` off): publishing the contract needs no secret. The linter runs
with ``tools/redocly.yaml`` (the recommended rules; only ``no-path-trailing-slash`` is off,
and the file says why) and must report neither an error nor a warning.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from service_commands import manage

ROOT = Path(__file__).resolve().parent.parent
REDOCLY = ROOT / "tools" / "node_modules" / ".bin" / "redocly"
SERVICES = ("hospital", "bloodbank", "notification")


def redocly_lint(document: Path) -> dict:
    """``redocly lint`` of ``document`` with the project's config: its JSON report (totals, problems)."""
    assert REDOCLY.exists(), "run make node_modules"
    result = subprocess.run(
        [str(REDOCLY), "lint", "--config", str(ROOT / "tools" / "redocly.yaml"), "--format", "json", str(document)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # No usage report to Redocly and no update check: the tests talk to nothing outside.
        env=os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert (result.returncode == 0) == (report["totals"]["errors"] == 0), result.stderr
    return report


def printed_schema(service: str, path: Path) -> dict:
    result = manage(service, "spectacular", "--format", "openapi-json", "--file", str(path), env={})
    assert result.returncode == 0, result.stderr
    return json.loads(path.read_text())


@pytest.mark.parametrize("service", SERVICES)
def test_the_printed_openapi_document_passes_redocly_recommended_rules(service, tmp_path):
    document = tmp_path / f"{service}.json"
    schema = printed_schema(service, document)
    assert schema["openapi"] == "3.1.0" and schema["servers"] and schema["info"]["license"]
    report = redocly_lint(document)
    problems = [f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location']}" for p in report["problems"]]
    assert (report["totals"]["errors"], report["totals"]["warnings"]) == (0, 0), "\n".join(problems)


def test_the_lint_check_reports_a_nullable_beside_all_of_without_a_type(tmp_path):
    document = tmp_path / "hospital.json"
    schema = printed_schema("hospital", document)
    schema["openapi"] = "3.0.3"  # the document as drf-spectacular wrote it before: OpenAPI 3.0, nullable
    schema["components"]["schemas"]["BloodRequest"]["properties"]["decision"] = {
        "allOf": [{"$ref": "#/components/schemas/Decision"}],
        "nullable": True,
        "readOnly": True,
    }
    document.write_text(json.dumps(schema))
    rules = {problem["ruleId"] for problem in redocly_lint(document)["problems"]}
    assert "nullable-type-sibling" in rules


def test_printing_the_schema_needs_no_secret_but_serving_still_does():
    refused = manage("hospital", "check", env={})
    assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr
    printed = manage("hospital", "spectacular", "--format", "openapi-json", env={})
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["info"]["title"] == "Hospital service API"
