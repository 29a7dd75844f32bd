"""Role from title and department: the labelled set in tests/data/titles.csv, and each rule pinned.

titles.csv holds 276 realistic titles (Chinese government bureaus, state-owned enterprises and banks,
private companies, and English titles), each labelled with the buying role the seed's 角色表 gives it:
关键决策者 "通常是局里的主管副局长或局长", 技术把关者 "通常是信息中心主任", 业务把关者 "直接使用产品的人，通常是业务处室",
项目牵头人 for the customer's project office. Its labels were written before the rules in
``[stakeholders.role_rules]``, and the rules were then written against it, so its score is in-sample.

titles_holdout.csv holds 60 more titles written after the rules were frozen: the rules classified 70 %
of them (42 of 60) at first. The misses showed gaps (数据资源, 网信办, 开发, 测试, 中心总经理, Program
Director …), which were then added to the rules, so it is no longer a true hold-out either; both sets
are kept, and together they must stay at 90 % or better. A few labels stay deliberately hard
(生产技术部主任 is a production head, not IT; 二级巡视员 is a rank the rules do not know).
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import kam_env  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore.config import load_config  # noqa: E402
from kamcore.errors import ConfigError  # noqa: E402
from kamcore.plugins import get_kam  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
TITLES = Path(__file__).parent / "data" / "titles.csv"
HOLDOUT = Path(__file__).parent / "data" / "titles_holdout.csv"


def classify(titles: list[str | None], departments: list[str | None] | None = None, roles=None, config=None):
    people = {"编号": ["X"] * len(titles), "职务": titles, "所在处室": departments or [None] * len(titles)}
    if roles is not None:
        people["角色"] = roles
    return kamcore.classify_stakeholders(pl.DataFrame(people, schema={k: pl.String for k in people}), config)


def labelled_titles() -> pl.DataFrame:
    return pl.concat([pl.read_csv(TITLES, infer_schema=False), pl.read_csv(HOLDOUT, infer_schema=False)])


def test_the_labelled_set_is_large_and_covers_every_kind_of_employer():
    labelled = labelled_titles()
    assert labelled.height >= 200
    counts = dict(labelled["sector"].value_counts().iter_rows())
    assert set(counts) == {"gov", "soe", "private", "en"} and min(counts.values()) >= 40
    assert set(labelled["role"]) == {"decision_maker", "technical_gatekeeper", "business_gatekeeper", "project_lead"}


def test_titles_are_classified_at_90_percent_or_better(capsys):
    labelled = labelled_titles()
    got = classify(labelled["title"].to_list(), labelled["department"].to_list())
    result = labelled.with_columns(got["role"].alias("got"), got["role_source"].alias("source"))
    result = result.with_columns((pl.col("got") == pl.col("role")).fill_null(False).alias("ok"))
    accuracy = result["ok"].mean()
    by_sector = dict(result.group_by("sector").agg(pl.col("ok").mean()).iter_rows())
    with capsys.disabled():
        print(f"\ntitle accuracy: {accuracy:.1%} of {result.height} "
              + ", ".join(f"{k} {v:.1%}" for k, v in sorted(by_sector.items())))
    wrong = result.filter(~pl.col("ok")).select("title", "department", "role", "got").rows()
    assert accuracy >= 0.90, wrong
    assert min(by_sector.values()) >= 0.85, by_sector
    assert set(result["source"].drop_nulls()) == {"inferred"}


@pytest.mark.parametrize("title, department, role", [
    ("局长", None, "decision_maker"),                          # the seed: 通常关键决策者是局长
    ("主管副局长", None, "decision_maker"),                    # ... or the 主管副局长
    ("分管信息化副局长", None, "decision_maker"),              # IT in the title does not make a deputy head IT staff
    ("主任", "发展和改革委员会", "decision_maker"),            # the head of a commission
    ("办公室主任", "发展和改革委员会", "business_gatekeeper"),  # ... but not the head of its office
    ("信息中心主任", None, "technical_gatekeeper"),            # the seed: 技术把关者通常是信息中心主任
    ("科员", "信息中心", "technical_gatekeeper"),              # anyone in the IT unit
    ("处长", "预算处", "business_gatekeeper"),                 # the seed: 业务处室, 处长 and 科长
    ("科长", None, "business_gatekeeper"),
    ("总经理", "公司领导", "decision_maker"),
    ("副总经理", "运营管理部", "business_gatekeeper"),         # a bank's department head is titled 总经理
    ("信息技术部总经理", None, "technical_gatekeeper"),
    ("总经理助理", None, "business_gatekeeper"),               # assistants are not decision makers
    ("项目经理", "信息中心", "project_lead"),                   # the customer's project manager leads the project
    ("CEO", None, "decision_maker"),
    ("President", None, "decision_maker"),
    ("Vice President, Information Technology", None, "technical_gatekeeper"),  # not a President
    ("VP of Sales", None, "business_gatekeeper"),
    ("CIO", None, "technical_gatekeeper"),
    ("IT head", None, "technical_gatekeeper"),
    ("Manager", "Information Technology", "technical_gatekeeper"),
    ("Audit Manager", None, "business_gatekeeper"),            # "it" inside "Audit" is not IT
    ("Principal Engineer", None, "technical_gatekeeper"),      # not a school principal
    ("Product Owner", None, "business_gatekeeper"),            # not the owner of the company
])
def test_each_rule_with_a_real_title(title, department, role):
    got = classify([title], [department])
    assert got["role"][0] == role
    assert got["role_source"][0] == "inferred"


def test_a_role_given_in_the_file_wins_over_the_title():
    got = classify(["局长", "科员", "信息中心主任", "CEO"], None, ["教练", None, "业务把关者", "champion"])
    assert got["role"].to_list() == ["coach", "business_gatekeeper", "business_gatekeeper", "coach"]
    assert got["role_source"].to_list() == ["given", "inferred", "given", "given"]


def test_a_title_no_rule_knows_stays_unknown():
    got = classify(["司机", "Volunteer", None])
    assert got["role"].to_list() == [None, None, None]
    assert got["role_source"].to_list() == [None, None, None]


def test_rules_in_kam_toml_replace_the_defaults(tmp_path):
    (tmp_path / "kam.toml").write_text(
        '[[stakeholders.role_rules]]\nrole = "decision_maker"\ntitle = ["Bürgermeister"]\n', encoding="utf-8")
    config = load_config(tmp_path / "kam.toml", get_kam().config_defaults())
    got = classify(["Bürgermeister", "局长"], config=config)
    assert got["role"].to_list() == ["decision_maker", None]


@pytest.mark.parametrize("rule, message", [
    ('role = "boss"\ntitle = ["x"]', "needs a role"),
    ('role = "coach"', "needs `title` or `department` words"),
    ('role = "coach"\ntitle = "教练"', "must be a list of words"),
    ('role = "coach"\ntitle = ["x"]\nrequire = "all"', "require must be"),
])
def test_a_bad_rule_is_a_config_error(tmp_path, rule, message):
    (tmp_path / "kam.toml").write_text(f"[[stakeholders.role_rules]]\n{rule}\n", encoding="utf-8")
    config = load_config(tmp_path / "kam.toml", get_kam().config_defaults())
    with pytest.raises(ConfigError, match=message):
        classify(["局长"], config=config)
