"""The CSV importer and header mapping, through real files and `kam score`.

Encodings (UTF-8, UTF-8 BOM, GB18030, UTF-16 as Excel's "Unicode text") and delimiters (comma,
semicolon, tab, pipe) must not change a single scored byte; the seed's Chinese headers, messy
spellings of them and a user's [columns] table map onto canonical names.
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import helpers  # noqa: E402
from helpers import ZH, invoke, kam_env, read_csv, read_rejects, read_summary, sample_rows, table, write_export  # noqa: E402,F401

from kamcore.errors import ConfigError, InputError  # noqa: E402
from kamcore.headers import clean_header, map_headers  # noqa: E402
from kamcore.schema import OPPORTUNITY_COLUMNS  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")

ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "utf-16"]
DETECTED = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030", "utf-16": "utf-16"}


def score(path: Path, out: Path, *extra: str) -> Path:
    result = invoke("score", path, "-o", out, *extra)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def rows():
    return table(sample_rows(14, seed=3), ZH)


@pytest.fixture
def reference(tmp_path, rows):
    """The scored output of the plain UTF-8, comma-separated export."""
    src = write_export(tmp_path / "ref.csv", rows)
    return score(src, tmp_path / "ref.scored.csv").read_bytes()


# -- encodings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_gives_identical_scored_output(tmp_path, rows, reference, encoding):
    # Excel's "Unicode text" is UTF-16 LE with a BOM and tab-separated
    delimiter = "\t" if encoding == "utf-16" else ","
    src = write_export(tmp_path / f"export-{encoding}.csv", rows, encoding=encoding, delimiter=delimiter)
    out = score(src, tmp_path / f"scored-{encoding}.csv")
    assert out.read_bytes() == reference
    summary = read_summary(out)
    assert summary["inputs"][0]["encoding"] == DETECTED[encoding]
    assert summary["inputs"][0]["delimiter"] == delimiter
    assert summary["rows"] == {"in": 14, "scored": 14, "rejected": 0}


def test_utf16_big_endian_with_bom(tmp_path, rows, reference):
    src = write_export(tmp_path / "export.txt", rows, encoding="utf-16-be", delimiter="\t")
    assert score(src, tmp_path / "scored.csv").read_bytes() == reference


def test_utf16_le_without_bom_is_detected_by_its_nul_pattern(tmp_path, rows, reference):
    """csv_importer's docstring: UTF-16 is recognised "by BOM or by its NUL pattern". A Chinese export
    has characters such as 销 (U+9500) and 一 (U+4E00) whose low byte is NUL, which the pattern must allow."""
    from kamcore_plugins.importers.csv_importer import detect_encoding

    data = helpers.encode(helpers.csv_text(rows, "\t"), "utf-16-le-nobom")
    assert detect_encoding(data) == "utf-16-le"
    src = write_export(tmp_path / "export.txt", rows, encoding="utf-16-le-nobom", delimiter="\t")
    assert score(src, tmp_path / "scored.csv").read_bytes() == reference


def test_gb18030_file_is_not_valid_utf8_so_detection_matters(rows):
    data = helpers.encode(helpers.csv_text(rows), "gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    from kamcore_plugins.importers.csv_importer import detect_encoding

    assert detect_encoding(data) == "gb18030"


def test_detect_encoding_by_bom_and_nul_pattern():
    from kamcore_plugins.importers.csv_importer import detect_encoding

    text = "编号,标的\r\nA,120万\r\n"
    assert detect_encoding(codecs.BOM_UTF8 + text.encode()) == "utf-8-sig"
    assert detect_encoding(codecs.BOM_UTF16_LE + text.encode("utf-16-le")) == "utf-16"
    assert detect_encoding(codecs.BOM_UTF16_BE + text.encode("utf-16-be")) == "utf-16"
    assert detect_encoding("id,amount\r\nA,1\r\n".encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding("id,amount\r\nA,1\r\n".encode("utf-16-be")) == "utf-16-be"
    assert detect_encoding(text.encode()) == "utf-8"
    assert detect_encoding(text.encode("gb18030")) == "gb18030"


def test_explicit_encoding_option_is_used(tmp_path, rows, reference):
    src = write_export(tmp_path / "export.csv", rows, encoding="gb18030")
    out = score(src, tmp_path / "scored.csv", "--encoding", "gb18030")
    assert out.read_bytes() == reference


def test_rejects_keep_physical_lines_after_transcoding(tmp_path):
    rows = table(sample_rows(6, seed=1), ZH)
    rows[5][rows[0].index("标的")] = "一百万"  # record 5: line 1 header + notes with one embedded newline above
    for encoding in ENCODINGS:
        delimiter = "\t" if encoding == "utf-16" else ","
        src = write_export(tmp_path / f"bad-{encoding}.csv", rows, encoding=encoding, delimiter=delimiter)
        out = score(src, tmp_path / f"bad-{encoding}.scored.csv")
        rejects = read_rejects(out)
        newlines_before = sum(cell.count("\n") for row in rows[:5] for cell in row)
        assert rejects.select("line", "column", "value").rows() == [(5 + 1 + newlines_before, "deal_size", "一百万")]


# -- delimiters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path, rows, reference, delimiter):
    src = write_export(tmp_path / "export.csv", rows, delimiter=delimiter)
    out = score(src, tmp_path / "scored.csv")
    assert out.read_bytes() == reference
    assert read_summary(out)["inputs"][0]["delimiter"] == delimiter


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_sniff_delimiter_ignores_other_candidates_inside_quoted_fields(delimiter):
    from kamcore_plugins.importers.csv_importer import sniff_delimiter

    rows = [["id", "notes", "amount"]] + [[f"A{i}", "a, b; c | d\te\nf", "1"] for i in range(5)]
    assert sniff_delimiter(helpers.csv_text(rows, delimiter)) == delimiter


def test_lf_line_endings_score_the_same(tmp_path, rows, reference):
    src = write_export(tmp_path / "lf.csv", rows, lineterminator="\n")
    assert score(src, tmp_path / "scored.csv").read_bytes() == reference


def test_explicit_delimiter_option(tmp_path, rows, reference):
    src = write_export(tmp_path / "export.txt", rows, delimiter=";")
    assert score(src, tmp_path / "scored.csv", "--delimiter", ";").read_bytes() == reference


# -- headers ------------------------------------------------------------------------------------

def test_seed_table_and_form_headers_map_to_canonical_names():
    headers = list(helpers.SEED_TABLE_HEADERS)
    mapping = map_headers(headers, OPPORTUNITY_COLUMNS, {})
    assert mapping == helpers.SEED_TABLE_HEADERS
    form = [h for h in helpers.SEED_FORM_HEADERS if h != "我们的短期销售收入"]  # item 6 and 标的 are one column
    assert map_headers(form, OPPORTUNITY_COLUMNS, {}) == {h: helpers.SEED_FORM_HEADERS[h] for h in form}
    assert map_headers(["我们的短期销售收入"], OPPORTUNITY_COLUMNS, {}) == {"我们的短期销售收入": "deal_size"}


def test_seed_spellings_with_de_variant_map_too():
    # the scraped seed prints 的 as 得 (客户得应用或项目, 项目对客户得紧迫性 …)
    spelt = {h.replace("的", "得"): name for h, name in helpers.SEED_FORM_HEADERS.items()
             if h != "我们的短期销售收入"}
    assert map_headers(list(spelt), OPPORTUNITY_COLUMNS, {}) == spelt


@pytest.mark.parametrize("messy, canonical", [
    (" 客户名称 ", "account"),
    ("项目 名称", "project_name"),                  # the seed's table splits headers with spaces
    ("信息来源\n渠道", "lead_source"),              # ... and with line breaks
    ("资金\u3000状况", "funding_status"),           # ideographic space
    ("编\u200b号", "opportunity_id"),               # zero-width space
    ("\ufeff编号", "opportunity_id"),               # a stray BOM
    ("采购\u200d时间\u2060", "purchase_date"),       # zero-width joiner / word joiner
    ("标的（单位：亿）", "deal_size"),               # full-width brackets and colon
    ("标的\n(单位: 亿)", "deal_size"),              # as printed in the seed
    ("Ｏｐｐｏｒｔｕｎｉｔｙ　ＩＤ", "opportunity_id"),  # full-width Latin
    ("opportunity_id", "opportunity_id"),
    ("Deal  Size", "deal_size"),
    ("STRATEGIC-VALUE", "strategic_value"),
    ("客户的项目立项业务状况 ", "approval_status"),
])
def test_messy_headers_map(messy, canonical):
    assert map_headers([messy], OPPORTUNITY_COLUMNS, {}) == {messy: canonical}


def test_unknown_headers_are_kept_cleaned():
    assert map_headers([" 区域\u200b 经理 "], OPPORTUNITY_COLUMNS, {}) == {" 区域\u200b 经理 ": "区域 经理"}
    assert clean_header("Ｒｅｇｉｏｎ\u3000 ") == "Region"


def test_two_headers_for_one_column_is_an_input_error():
    with pytest.raises(InputError, match="both map to 'account'"):
        map_headers(["客户名称", "Account"], OPPORTUNITY_COLUMNS, {})


def test_seed_headers_through_a_file(tmp_path):
    """The seed's 信息初始表 as an export: headers with spaces and line breaks, 标的 in 亿."""
    rows = [["编号", "项目 名称", "采购 时间", "标的\n(单位: 亿)", "人脉 资源", "信息来源 渠道", "资金 来源", "资金 状况",
             "销售阶段", "客户名称"],
            ["A", "项目A", "2009.05", "1", "决策者. 决策者提", "门市", "政府", "到位", "潜在", "甲"],
            ["B", "项目B", "2010.1", "1.5", "支持者", "E-mail", "银行", "未到位", "意向", "乙"],
            ["C", "项目C", "2009.12", "8", "支持者 员工提供", "企业自筹", "企业自筹", "一半到位", "方案", "丙"],
            ["D", "项目D", "2009.10", "5", "决策者", "其他", "政府", "到位", "谈判成交", "丁"]]
    rows[3][5] = "老客户介绍"
    src = write_export(tmp_path / "信息初始表.csv", rows)
    out = score(src, tmp_path / "scored.csv")
    scored = read_csv(out)
    for name in helpers.SEED_TABLE_HEADERS.values():
        assert name in scored.columns
    assert scored["deal_size"].to_list() == ["100000000.0", "150000000.0", "800000000.0", "500000000.0"]
    assert scored["purchase_date"].to_list() == ["2009-05-01", "2010-01-01", "2009-12-01", "2009-10-01"]
    assert set(scored["purchase_date_precision"]) == {"month"}
    assert scored["lead_source"].to_list() == ["walk_in", "email", "referral", "other"]
    assert scored["funding_status"].to_list() == ["in_place", "not_in_place", "partial", "in_place"]
    assert scored["stage"].to_list() == ["potential", "intent", "solution", "negotiation"]


def test_user_column_mapping_in_kam_toml(tmp_path):
    rows = [["Deal No.", "Kundenname", "Ｅｘｐｅｃｔｅｄ Budget", "Volumen"],
            ["X1", "Müller GmbH", "有", "120万"],
            ["X2", "Schmidt AG", "无", "US$5,000"]]
    src = write_export(tmp_path / "export.csv", rows)
    (tmp_path / "kam.toml").write_text(
        '[columns]\n"deal no." = "opportunity_id"\n"Kundenname" = "account"\n'
        '"Expected budget" = "budget_status"\n" VOLUMEN " = "deal_size"\n', encoding="utf-8")
    out = score(src, tmp_path / "scored.csv")  # ./kam.toml is found in the current folder
    scored = read_csv(out)
    assert scored["opportunity_id"].to_list() == ["X1", "X2"]
    assert scored["account"].to_list() == ["Müller GmbH", "Schmidt AG"]
    assert scored["budget_status"].to_list() == ["allocated", "none"]
    assert scored["deal_size"].to_list() == ["1200000.0", "5000.0"]
    assert scored["currency"].to_list() == ["CNY", "USD"]
    summary = read_summary(out)
    assert summary["config"]["path"] == "kam.toml"


def test_user_mapping_wins_over_builtin_alias(tmp_path):
    rows = [["编号", "金额", "标的"], ["A", "abc", "120万"]]
    src = write_export(tmp_path / "export.csv", rows)
    config = tmp_path / "cfg.toml"
    config.write_text('[columns]\n"金额" = "notes"\n', encoding="utf-8")
    out = score(src, tmp_path / "scored.csv", "--config", config)
    scored = read_csv(out)
    assert scored["notes"].to_list() == ["abc"]
    assert scored["deal_size"].to_list() == ["1200000.0"]


def test_invalid_mapping_target_is_a_config_error(tmp_path):
    rows = [["编号", "Kundenname"], ["A", "x"]]
    src = write_export(tmp_path / "export.csv", rows)
    config = tmp_path / "kam.toml"
    config.write_text('[columns]\n"Kundenname" = "customer_name"\n', encoding="utf-8")
    result = invoke("score", src, "-o", tmp_path / "scored.csv", "--config", config)
    assert result.exit_code == 3
    line = helpers.one_error_line(result.stderr)
    assert "customer_name" in line and "config error" in line
    assert not (tmp_path / "scored.csv").exists()
    with pytest.raises(ConfigError):
        map_headers(["Kundenname"], OPPORTUNITY_COLUMNS, {"Kundenname": "customer_name"})


def test_duplicate_columns_in_a_file_exit_4(tmp_path):
    src = write_export(tmp_path / "export.csv", [["编号", "客户名称", "Account"], ["A", "x", "y"]])
    result = invoke("score", src, "-o", tmp_path / "scored.csv")
    assert result.exit_code == 4
    assert "both map to 'account'" in helpers.one_error_line(result.stderr)


def test_file_without_id_column_gets_ids_from_file_name(tmp_path):
    src = write_export(tmp_path / "deals.csv", [["客户名称", "标的"], ["甲", "1"], ["乙", "2"]])
    out = score(src, tmp_path / "scored.csv")
    assert read_csv(out)["opportunity_id"].to_list() == ["deals-1", "deals-2"]
    assert any("no opportunity_id column" in note for note in read_summary(out)["notes"])
