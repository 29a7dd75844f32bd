"""Shared helpers for the importer, normaliser, pipeline, CLI and API tests.

Inputs are generated here, in Python, into each test's ``tmp_path``: nothing is read from outside the
repository at run time. Import as ``import helpers`` (the test modules put this folder on sys.path).
The fixtures ``kam_env`` (autouse in the modules that import it) isolate a test from the caller's
shell: no KAM_* switches, no stray ./kam.toml, only kamcore's own built-in plugins, a fresh session.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import polars as pl
import pytest

# -- the seed's vocabulary ---------------------------------------------------------------------

# 信息初始表 (initial opportunity table) headers, as the brief and the seed name them
SEED_TABLE_HEADERS = {
    "编号": "opportunity_id", "客户名称": "account", "项目名称": "project_name", "采购时间": "purchase_date",
    "标的": "deal_size", "人脉资源": "contacts", "信息来源渠道": "lead_source", "资金来源": "funding_source",
    "资金状况": "funding_status", "销售阶段": "stage",
}
# the ten items of 销售机会评估表, worded as in the seed ("的" as printed in DESIGN §4)
SEED_FORM_HEADERS = {
    "客户的应用或项目": "need_clarity", "客户的业务状况": "business_condition",
    "客户的项目立项业务状况": "approval_status", "项目的预算": "budget_status", "项目对客户的紧迫性": "urgency",
    "我们的短期销售收入": "deal_size", "我们的未来销售收入": "future_revenue", "我们的利润": "margin",
    "我们的风险": "risk", "对我们扩充市场的战略价值": "strategic_value",
}

# Chinese header of every column the sample export has (item 6 is 标的 here, so 我们的短期销售收入 is not used)
ZH = {
    "opportunity_id": "编号", "account": "客户名称", "project_name": "项目名称", "stage": "销售阶段",
    "lead_source": "信息来源渠道", "deal_size": "标的", "purchase_date": "采购时间", "funding_source": "资金来源",
    "funding_status": "资金状况", "need_clarity": "客户的应用或项目", "business_condition": "客户的业务状况",
    "approval_status": "客户的项目立项业务状况", "budget_status": "项目的预算", "urgency": "项目对客户的紧迫性",
    "future_revenue": "我们的未来销售收入", "margin": "我们的利润", "risk": "我们的风险",
    "strategic_value": "对我们扩充市场的战略价值", "competitors": "竞争对手", "owner": "销售经理", "contacts": "人脉资源",
    "notes": "备注",
}

CRITERIA_COLUMNS = ["p1_need", "p2_business", "p3_approval", "p4_budget", "p5_urgency", "p6_revenue", "p7_future",
                    "p8_margin", "p9_risk", "p10_strategic"]
SCORE_COLUMNS = CRITERIA_COLUMNS + ["real_score", "worth_score", "total_score", "band", "quadrant",
                                    "win_probability", "reasons"]
BANDS = {"A", "B", "C", "D"}
QUADRANTS = {"pursue", "develop", "qualify_out", "drop"}

_STAGES = ["潜在", "意向", "方案", "谈判成交", "赢单", "丢单"]
_CHANNELS = ["门市", "电话", "E-mail", "老客户介绍", "销售自拓", "市场活动", "其他"]
_AMOUNTS = ["1.2亿", "120万", "¥1,200,000", "850000元", "US$120,000", "12万美元", "98000", "3.5万", "€45,000"]
_DATES = ["2009.05", "2010.1", "2009/5/1", "2009-05-01", "2009-Q2", "2009年第2季度", "2024年3月", "2025-11"]
_NOTES = ["客户要求提供POC，预计下月完成", "已发送报价单, 等待反馈", 'Follow-up: "pricing" discussed with CIO',
          "第一次拜访: 见了信息中心主任\n第二次: 技术交流, 方案认可", "价格敏感; 要求≥15%折扣 | 需高层拜访", "",
          "招标文件已下载\t下周三开标"]


def sample_rows(n: int = 12, seed: int = 7) -> list[dict[str, str]]:
    """``n`` valid opportunities keyed by canonical name, values spelt as a Chinese export has them.

    Notes carry commas, quotes, semicolons, pipes, tabs and line breaks (so every delimiter and quoting
    path is exercised); a few criterion cells are empty.
    """
    rng = random.Random(seed)
    pick = rng.choice
    rows = []
    for i in range(n):
        rows.append({
            "opportunity_id": f"OPP-{i + 1:04d}",
            "account": pick(["北京华信科技有限公司", "上海申通地铁", "Acme Corp", "广州恒通物流股份有限公司"]),
            "project_name": pick(["智慧政务平台一期", "数据中心扩容", "ERP upgrade", "视频监控建设项目"]),
            "stage": pick(_STAGES),
            "lead_source": pick(_CHANNELS),
            "deal_size": _AMOUNTS[i % len(_AMOUNTS)],
            "purchase_date": _DATES[i % len(_DATES)],
            "funding_source": pick(["政府", "银行", "企业自筹", "其他"]),
            "funding_status": pick(["到位", "一半到位", "未到位"]),
            "need_clarity": pick(["清楚", "部分清楚", "不清楚", ""]),
            "business_condition": pick(["强劲", "稳定", "疲弱"]),
            "approval_status": pick(["已立项", "健全", "立项中", "未立项"]),
            "budget_status": pick(["有", "部分", "无"]),
            "urgency": pick(["紧迫", "清楚", "一般", "不急", ""]),
            "future_revenue": pick(["高", "中", "低", "300万"]),
            "margin": pick(["35%", "24.1%", "12", "40.5"]),
            "risk": pick(["低", "中", "高"]),
            "strategic_value": pick(["高", "中", "低"]),
            "competitors": pick(["3", "华为、浪潮", "0", "H3C;Inspur;ZTE"]),
            "owner": pick(["张伟", "李芳", "王强"]),
            "contacts": pick(["决策者. 决策者提", "支持者", ""]),
            "notes": _NOTES[i % len(_NOTES)],
        })
    return rows


def table(rows: list[dict[str, str]], headers: dict[str, str] | None = None) -> list[list[str]]:
    """Header row plus data rows; ``headers`` renames canonical names (e.g. :data:`ZH`)."""
    names = list(rows[0])
    out = [[(headers or {}).get(name, name) for name in names]]
    out += [[row.get(name, "") for name in names] for row in rows]
    return out


def csv_text(rows: list[list[str]], delimiter: str = ",", lineterminator: str = "\r\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue()


def encode(text: str, encoding: str) -> bytes:
    """Bytes as the named tool writes them: utf-8, utf-8-sig (BOM), gb18030 (no BOM), utf-16 (LE + BOM,
    Excel's "Unicode text"), utf-16-be (BE + BOM), utf-16-le-nobom."""
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    if encoding == "utf-16":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    if encoding == "utf-16-le-nobom":
        return text.encode("utf-16-le")
    return text.encode(encoding)


def write_export(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",",
                 lineterminator: str = "\r\n") -> Path:
    path.write_bytes(encode(csv_text(rows, delimiter, lineterminator), encoding))
    return path


def read_csv(path: Path) -> pl.DataFrame:
    """kam's CSV output as text (BOM dropped), so values compare exactly as written."""
    return pl.read_csv(path, infer_schema=False)


def read_rejects(output: Path) -> pl.DataFrame:
    return pl.read_csv(output.with_name(output.name + ".rejects.csv"), infer_schema=False,
                       schema_overrides={"line": pl.Int64})


def read_summary(output: Path) -> dict:
    return json.loads(output.with_name(output.name + ".summary.json").read_text(encoding="utf-8"))


# -- running kam ---------------------------------------------------------------------------------

def builtin_plugins() -> str:
    """The entry points kamcore itself ships (so a third-party plugin installed in the venv by another
    test cannot change the numbers these tests check)."""
    names = sorted(ep.name for ep in entry_points(group="kamcore") if ep.dist and ep.dist.name == "kamcore")
    return ",".join(names)


@pytest.fixture
def kam_env(monkeypatch, tmp_path):
    """No KAM_* switches from the shell, only the built-in plugins, cwd in tmp_path, a fresh session."""
    from kamcore import plugins

    for name in list(os.environ):
        if name.startswith("KAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KAM_LOAD_PLUGINS", builtin_plugins())
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    yield tmp_path
    plugins.reset()


def invoke(*args: str, input: bytes | None = None):
    """``kam ARGS`` through click's test runner (in-process)."""
    from click.testing import CliRunner

    from kamcore.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)


def kam_command() -> list[str]:
    exe = Path(sys.executable).with_name("kam")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("kam")
    if found:
        return [found]
    return [sys.executable, "-c", "from kamcore.cli import main; main()"]


def run_kam(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120,
            stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """``kam ARGS`` as a real process (bytes out, so stdout can be compared exactly; ``stdin`` piped in)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KAM_")}
    environment["KAM_LOAD_PLUGINS"] = builtin_plugins()
    environment.update(env or {})
    return subprocess.run(kam_command() + [str(a) for a in args], cwd=cwd, env=environment,
                          capture_output=True, timeout=timeout, input=stdin)


def one_error_line(stderr: str) -> str:
    """The stderr of a failed run, checked to be exactly one ``kam:`` line without a traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kam:"), stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- the normaliser on its own -------------------------------------------------------------------

def normalise(columns: dict[str, list[str | None]], *, config=None, header_units: dict | None = None) -> pl.DataFrame:
    """Run :class:`kamcore.normalise.Plan` on raw text columns (canonical names).

    Returns the normalised columns under their output names, plus ``problem:<column>`` per checked
    column (null when the value is accepted).
    """
    from kamcore.config import load_config
    from kamcore.normalise import Plan
    from kamcore.plugins import get_kam
    from kamcore.schema import OPPORTUNITY

    config = config or load_config(None, get_kam().config_defaults())
    plan = Plan(list(columns), OPPORTUNITY, config, header_units or {})
    frame = pl.LazyFrame(columns, schema={name: pl.String for name in columns})
    problems = [pl.col(work).alias("problem:" + name) for name, work in plan.problems.items()]
    return plan.on_frame(frame).select(*plan.output(), *problems).collect()
