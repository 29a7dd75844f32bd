"""Personal data: columns holding a person's details are left out of scored outputs unless asked for,
and their values never reach logs, error messages, the run summary or the rejects file."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import invoke, kam_env, read_csv, read_rejects, read_summary  # noqa: E402,F401

import kamcore  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
SECRETS = ["13912345678", "1968-03-15", "zhang.san@example.com", "女儿在北京读大学"]
EXPORT = (
    "编号,客户名称,标的,人脉资源,联系人电话,联系人生日,Contact Email,家庭情况,项目的预算\r\n"
    "P-1,华能集团,120万,张处长（教练）,13912345678,1968-03-15,zhang.san@example.com,女儿在北京读大学,有\r\n"
    "P-2,上海申通,一百万,,13912345678,1968-03-15,zhang.san@example.com,女儿在北京读大学,无\r\n"
)
PERSONAL = ["联系人电话", "联系人生日", "Contact Email", "家庭情况"]


def read_xlsx(path: Path) -> pl.DataFrame:
    from openpyxl import load_workbook

    rows = list(load_workbook(path, read_only=True).active.values)
    return pl.DataFrame([list(r) for r in rows[1:]], schema=list(rows[0]), orient="row")


@pytest.fixture
def export(tmp_path) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(EXPORT.encode("gb18030"))
    return path


@pytest.mark.parametrize("suffix", ["csv", "xlsx", "jsonl", "parquet"])
def test_personal_columns_are_left_out_of_the_output_by_default(export, tmp_path, caplog, suffix):
    out = tmp_path / f"scored.{suffix}"
    result = invoke("--debug", "score", export, "-o", out)
    assert result.exit_code == 0, result.output
    scored = {"csv": read_csv, "xlsx": read_xlsx, "jsonl": pl.read_ndjson, "parquet": pl.read_parquet}[suffix](out)
    assert not set(PERSONAL) & set(scored.columns)
    assert "contacts" in scored.columns  # 人脉资源 is the deal's contacts column, not a person's field
    everything = "\n".join([result.output, caplog.text, out.with_name(out.name + ".summary.json").read_text("utf-8"),
                            out.with_name(out.name + ".rejects.csv").read_text("utf-8-sig")])
    everything += str(scored.rows())
    for secret in SECRETS:
        assert secret not in everything
    summary = read_summary(out)
    assert any(n.endswith("personal column(s) Contact Email, 家庭情况, 联系人生日, 联系人电话 left out of the output "
                          "(--include-pii keeps them)") for n in summary["notes"])
    assert read_rejects(out).select("line", "column").rows() == [(3, "deal_size")]


def test_include_pii_keeps_them(export, tmp_path):
    out = tmp_path / "scored.csv"
    result = invoke("score", export, "-o", out, "--include-pii")
    assert result.exit_code == 0, result.output
    scored = read_csv(out)
    assert scored["联系人电话"].to_list() == ["13912345678"]
    assert scored["Contact Email"].to_list() == ["zhang.san@example.com"]
    assert not any("personal column" in n for n in read_summary(out)["notes"])
    # the rejects preview still never shows a personal value, even when the output keeps it
    assert not any(secret in out.with_name("scored.csv.rejects.csv").read_text("utf-8-sig") for secret in SECRETS)


def test_the_api_leaves_them_out_unless_asked(export):
    frame = pl.read_csv(export, encoding="gb18030", infer_schema=False)
    assert not set(PERSONAL) & set(kamcore.score_frame(frame).scored.columns)
    assert set(PERSONAL) <= set(kamcore.score_frame(frame, include_pii=True).scored.columns)


def test_kam_classify_leaves_personal_fields_out_unless_include_pii(tmp_path):
    """The people table: name, phone and birthday are dropped by default (--personal is the old name)."""
    people = tmp_path / "people.csv"
    people.write_text("编号,姓名,职务,电话,生日\r\nP-1,张三,总经理,13912345678,1968-03-15\r\n", encoding="utf-8")
    out = tmp_path / "people.out.csv"
    result = invoke("classify", people, "-o", out)
    assert result.exit_code == 0, result.output
    classified = read_csv(out)
    assert not {"name", "phone", "birthday"} & set(classified.columns)
    kept = invoke("classify", people, "-o", out, "--include-pii")
    assert kept.exit_code == 0, kept.output
    assert read_csv(out)["phone"].to_list() == ["13912345678"]
