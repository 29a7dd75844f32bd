"""Generate the corpus of broken and unusual CRM exports in this folder, and its expected outcomes.

    python tests/corpus/make_corpus.py            # rewrite every file and expected.json
    python tests/corpus/make_corpus.py --check    # exit 1 if a committed file differs from what this makes
    python tests/corpus/make_corpus.py --table    # print the Markdown table of docs/inputs.md

Deterministic: the same bytes every run (fixed content, fixed timestamps inside the workbooks' zips).
``tests/test_corpus.py`` runs ``kam score`` on every file and checks the outcome recorded here: the exit
code, the row accounting (rows in = scored + rejected), the header line, the importer, words of the
error message or of the notes, and, for a refused file, that no output was written.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = (2025, 1, 1, 0, 0, 0)

HEADERS = ["编号", "客户名称", "项目名称", "销售阶段", "标的", "采购时间", "资金状况", "客户的应用或项目", "项目的预算",
           "我们的风险", "备注"]
ROWS = [
    ["OPP-001", "华能集团", "智慧电厂", "方案", "1200万", "2025-09", "到位", "清楚", "有", "低", "首次拜访"],
    ["OPP-002", "上海申通", "信号系统", "谈判成交", "1.5亿", "2025-07-15", "一半到位", "部分清楚", "部分", "中", "招标中, 下周开标"],
    ["OPP-003", "Acme Corp", "ERP upgrade", "意向", "$250,000", "2025-Q4", "未到位", "不清楚", "无", "高", ""],
    ["OPP-004", "小王商贸", "门店系统", "潜在", "30万", "2026-03", "到位", "清楚", "有", "中", "ref: 老客户"],
    ["OPP-005", "广州恒通", "视频监控", "方案", "¥850,000", "2025-11", "一半到位", "清楚", "部分", "低", "客户要求POC"],
]
N = len(ROWS)
CASES: list[dict] = []


def case(name: str, what: str, outcome: str, *, exit: int = 0, rows: tuple | None = None, args: tuple = (),
         env: dict | None = None, importer: str | None = None, header_line: int | None = None,
         error: tuple = (), notes: tuple = (), rejects: tuple = (), columns: tuple = ()):
    """Record one corpus file and what ``kam score`` must do with it."""
    def register(build):
        CASES.append({"file": name, "what": what, "outcome": outcome, "exit": exit, "rows": rows, "args": list(args),
                      "env": env or {}, "importer": importer, "header_line": header_line, "error": list(error),
                      "notes": list(notes), "rejects": [list(r) for r in rejects], "columns": list(columns),
                      "build": build})
        return build
    return register


def csv_text(rows, delimiter=",", terminator="\r\n", quoting=csv.QUOTE_MINIMAL) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator, quoting=quoting).writerows(rows)
    return buffer.getvalue()


def table(rows=ROWS, headers=HEADERS):
    return [headers] + [list(r) for r in rows]


# -- encodings and delimiters ------------------------------------------------------------------


@case("gb18030_no_bom.csv", "Chinese export in GB18030 (GBK) without a BOM, as Excel on a Chinese Windows saves it",
      "read; encoding gb18030", rows=(N, N, 0), importer="csv", header_line=1)
def _():
    return csv_text(table()).encode("gb18030")


@case("utf16_tab.txt", "Excel's \"Unicode text\": UTF-16 LE with BOM, tab-separated", "read; delimiter tab",
      rows=(N, N, 0), importer="csv")
def _():
    return codecs.BOM_UTF16_LE + csv_text(table(), "\t").encode("utf-16-le")


@case("utf8_bom_semicolon.csv", "UTF-8 with BOM and semicolons (a European Excel's CSV)", "read; delimiter ;",
      rows=(N, N, 0), importer="csv")
def _():
    return codecs.BOM_UTF8 + csv_text(table(), ";").encode()


@case("excel_sep_line.csv", "Excel's `sep=;` first line (Excel writes and honours it) before a semicolon export",
      "read; delimiter ; as the line names it (a note, not a warning)", rows=(N, N, 0), importer="csv", header_line=2,
      notes=("line 1 is Excel's 'sep=;' line",), columns=("deal_size",))
def _():
    return ("sep=;\r\n" + csv_text(table(), ";")).encode()


@case("excel_text.csv", "ids and amounts written as Excel's `=\"000101\"` (text Excel keeps as written: leading zeros), "
      "bare and quoted (`\"=\"\"000104\"\"\"`)", "read; the text inside, `000101` (a note)", rows=(N, N, 0), importer="csv",
      notes=("were read as the text inside",))
def _():
    rows = [[f"EXCEL{i:06d}" if j == 0 else v for j, v in enumerate(row)] for i, row in enumerate(ROWS, start=101)]
    rows[1][4] = "EXCELAMOUNT"
    text = csv_text(table(rows)).replace("EXCELAMOUNT", '="1.5亿"').replace("EXCEL000104", '"=""000104"""')
    return re.sub(r"EXCEL(\d{6})", r'="\1"', text).encode()


@case("unit_in_header.csv", "the amount's unit and currency in its header, `标的（万元）`, and `我们的利润(%)`, as Chinese "
      "CRMs export them", "read; bare amounts in 万元 (CNY), a unit written in the cell wins", rows=(N, N, 0),
      columns=("deal_size", "margin"))
def _():
    rows = [[amount if j == 4 else v for j, v in enumerate(row)]
            for row, amount in zip(ROWS, ["1200", "15000", "25万美元", "30", "85"])]
    headers = [{"标的": "标的（万元）"}.get(h, h) for h in HEADERS] + ["我们的利润(%)"]
    return csv_text([headers] + [row + [m] for row, m in zip(rows, ["32", "18.5", "25", "30", "12"])]).encode()


@case("chinese_crm_opportunities.csv", "a Chinese CRM's opportunity list (商机): 商机名称, 商机阶段 with the CRM's own "
      "funnel (初步接洽 … 谈判审核, 赢单), 商机金额（元）, 预计成交日期, 销售负责人, 商机来源, 主要竞争对手, and 商机状态 "
      "with the deals still running (进行中)", "read; every header mapped, the running deals scored with outcome open",
      rows=(N, N, 0), columns=("project_name", "stage", "deal_size", "purchase_date", "owner", "lead_source",
                               "competitors", "outcome"))
def _():
    headers = ["商机编号", "商机名称", "客户名称", "商机阶段", "商机金额（元）", "预计成交日期", "销售负责人", "商机来源",
               "主要竞争对手", "商机状态", "赢率", "备注"]
    rows = [["SJ-0001", "智慧电厂", "华能集团", "方案报价", "12000000", "2025-09-30", "张伟", "展会", "浪潮、用友", "进行中", "60%", ""],
            ["SJ-0002", "信号系统", "上海申通", "谈判审核", "150000000", "2025-07-15", "李芳", "转介绍", "西门子", "进行中", "80%",
             "招标中"],
            ["SJ-0003", "ERP 升级", "小王商贸", "需求确认", "300000", "2026-03-31", "王强", "电话营销", "", "进行中", "30%", ""],
            ["SJ-0004", "门店系统", "广州恒通", "初步接洽", "850000", "2026-06-30", "张伟", "市场活动", "金蝶", "进行中", "10%", ""],
            ["SJ-0005", "视频监控", "江北市财政局", "赢单", "2400000", "2025-01-20", "李芳", "销售自拓", "海康", "赢单", "100%",
             "已签约"]]
    return csv_text([headers] + rows).encode("utf-8-sig")


@case("pipe_delimited.txt", "pipe-separated text from a database dump", "read; delimiter |", rows=(N, N, 0))
def _():
    return csv_text(table(), "|", "\n").encode()


@case("all_quoted_crlf.csv", "every field quoted, CRLF line ends", "read", rows=(N, N, 0))
def _():
    return csv_text(table(), quoting=csv.QUOTE_ALL).encode()


# -- preamble, footer, totals -------------------------------------------------------------------


@case("preamble.csv", "a report title (padded with delimiters, as Excel saves merged cells), a filter line and a "
      "blank line before the header", "header found on line 4; the 3 lines above skipped with a warning",
      rows=(N, N, 0), header_line=4, notes=("header is on line 4",))
def _():
    return ("2025年大客户销售机会汇总" + "," * (len(HEADERS) - 1) + "\r\n导出人: 销售部\r\n\r\n" + csv_text(table())).encode()


@case("salesforce_report.csv", "Salesforce report export (Details Only): English headers, US dates and the footer "
      "block (blank line, report name, copyright, Confidential, Generated By)",
      "the Salesforce profile is detected: its headers, stages and US dates (m/d/yyyy) are read; the footer is left "
      "out with a warning", rows=(4, 4, 0), header_line=1,
      notes=("report footer of 5", "detected a Salesforce export"))
def _():
    head = ["Opportunity ID", "Opportunity Name", "Account Name", "Amount", "Close Date", "Stage", "Opportunity Owner"]
    body = [["0061x00000A1", "Data platform", "Acme Corp", "250000", "2025-03-31", "Prospecting", "Jane Roe"],
            ["0061x00000A2", "CRM rollout", "Globex", "1200000", "6/30/2025", "Qualification", "Jane Roe"],
            ["0061x00000A3", "Helpdesk", "Initech", "80000", "2025-09-30", "Negotiation/Review", "John Doe"],
            ["0061x00000A4", "Edge devices", "Umbrella", "45000", "2025-12-15", "Closed Won", "John Doe"]]
    footer = ('\r\n"Opportunity Pipeline"\r\n"Copyright (c) 2000-2025 salesforce.com, inc. All rights reserved."\r\n'
              '"Confidential Information - Do Not Distribute"\r\n"Generated By:  Admin User  1/2/2025 10:11 AM"\r\n'
              '"Acme Holdings"\r\n')
    return (csv_text([head] + body, quoting=csv.QUOTE_ALL) + footer).encode()


@case("hubspot_deals.csv", "HubSpot deals export: Record ID, internal stage codes (appointmentscheduled, "
      "closedwon …), timestamps with minutes", "the HubSpot profile is detected: Record ID is the id, the stage "
      "codes map onto the four sales stages", rows=(4, 4, 0), notes=("detected a HubSpot export",),
      columns=("stage",))
def _():
    head = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Pipeline", "Deal owner"]
    body = [["9001", "Acme - ERP", "appointmentscheduled", "25000", "2025-03-31 00:00", "default", "Jane Roe"],
            ["9002", "Globex - CRM", "qualifiedtobuy", "120000", "2025-06-30 00:00", "default", "Jane Roe"],
            ["9003", "Initech - Helpdesk", "contractsent", "8000", "2025-09-30 00:00", "default", "John Doe"],
            ["9004", "Umbrella - Edge", "closedwon", "45000", "2025-12-15 00:00", "default", "John Doe"]]
    return csv_text([head] + body).encode()


@case("totals_row.csv", "a 合计 (totals) row after the data", "totals row left out with a warning", rows=(N, N, 0),
      notes=("totals row",))
def _():
    return csv_text(table() + [["合计", "", "", "", "3.2亿", "", "", "", "", "", ""]]).encode()


@case("blank_lines.csv", "blank lines between the rows and at the end", "blank lines skipped and counted",
      rows=(N, N, 0))
def _():
    lines = csv_text(table()).split("\r\n")
    return "\r\n".join(lines[:3] + [""] + lines[3:] + ["", ""]).encode()


# -- structure ------------------------------------------------------------------------------------


@case("ragged_short.csv", "a row with fewer fields than the header (cut short)",
      "the row is quarantined: rejected with its line, the first missing column, the fields expected and found, "
      "and a masked preview; the others are scored", rows=(N, N - 1, 1), rejects=((4, "采购时间"),),
      notes=("1 record(s) with the wrong number of fields",))
def _():
    rows = table()
    text = csv_text(rows[:3]) + "OPP-003,Acme Corp,ERP upgrade,意向,$250\r\n" + csv_text(rows[4:])
    return text.encode()


@case("ragged_long.csv", "a row with more fields than the header (an unquoted comma in a note)",
      "the row is quarantined (line 3, column 12: the extra value); the others are scored", rows=(N, N - 1, 1),
      rejects=((3, "column 12"),))
def _():
    rows = table()
    rows[2][10] = "招标中"
    return (csv_text(rows[:2]) + ",".join(rows[2]) + ",下周开标\r\n" + csv_text(rows[3:])).encode()


@case("ragged_many.csv", "an export written without quoting: commas in notes and amounts split 28 of 40 rows",
      "refused: more than a few ragged rows means the file, not the rows, is broken; the first line and the count",
      exit=4, error=("line 3", "found 12", "28 of 40 records have the wrong number of fields"))
def _():
    lines = [",".join(HEADERS)]
    for i in range(40):
        row = list(ROWS[i % N])
        row[0] = f"OPP-{i + 1:03d}"
        row[10] = "招标中,下周开标" if i % 2 else "首次拜访"
        lines.append(",".join(row))
    return ("\r\n".join(lines) + "\r\n").encode()


@case("unterminated_quote.csv", "a quote that is never closed", "refused: the line and column where it opens",
      exit=4, error=("line 3", "column 11", "备注", "runs on to line 4"))
def _():
    rows = table()
    return (csv_text(rows[:2]) + ",".join(rows[2][:10]) + ',"招标中, 下周开标\r\n' + csv_text(rows[3:])).encode()


@case("bare_quote.csv", 'a double quote inside an unquoted value (12" monitor)', "refused: line and column",
      exit=4, error=("line 2", "double quote", "项目名称"))
def _():
    rows = table()
    return (csv_text(rows[:1]) + ",".join(rows[1]).replace("智慧电厂", '12" 显示屏') + "\r\n" + csv_text(rows[2:])).encode()


@case("embedded_newlines.csv", "quoted notes with line breaks (CRLF and LF), then a bad amount",
      "read; the rejected row is reported at its physical line (line 7), not its record number", rows=(N, N - 1, 1),
      rejects=((7, "deal_size"),))
def _():
    rows = table()
    rows[1][10] = "第一次拜访\r\n第二次: 技术交流"
    rows[2][10] = "line one\nline two\nline three"
    rows[3][4] = "一百万"
    return csv_text(rows).encode()


@case("nul_bytes.csv", "a NUL byte inside a value (a damaged export)", "refused: line and column", exit=4,
      error=("line 3", "NUL", "客户名称"))
def _():
    rows = table()
    rows[2][1] = "上海\x00申通"
    return csv_text(rows).encode()


@case("long_note.csv", "a 60 KB note (quoted, with line breaks): long but legal", "read", rows=(N, N, 0))
def _():
    rows = table()
    rows[1][10] = ("客户要求详细方案。\n" * 2000)[:20000]
    return csv_text(rows).encode()


@case("huge_field.csv", "a value over the field limit (KAM_CSV_MAX_FIELD_BYTES=4096 here; 1 MiB by default)",
      "refused: the line and column of the value", exit=4, env={"KAM_CSV_MAX_FIELD_BYTES": "4096"},
      error=("line 2", "column 11", "longer than 4,096 bytes", "备注"))
def _():
    rows = table()
    rows[1][10] = "x" * 5000
    return csv_text(rows).encode()


@case("duplicate_headers.csv", "two columns named 客户名称", "refused: both columns named", exit=4,
      error=("columns 2 and 11", "客户名称"))
def _():
    return csv_text(table(headers=HEADERS[:10] + ["客户名称"])).encode()


@case("repeated_header.csv", "two columns named 创建人 (the account's and the deal's creator), a header kam "
      "does not read", "read; the second kept as 创建人_13, with a warning", rows=(N, N, 0),
      notes=("both named '创建人'; kam reads neither, and column 13 is kept as '创建人_13'",), columns=("创建人_13",))
def _():
    return csv_text([row + extra for row, extra in zip(table(), [["创建人", "创建人"]] + [["张三", "李四"]] * N)]).encode()


@case("trailing_delimiter.csv", "every line ends with a comma (an empty last header)",
      "read; the empty last column left out", rows=(N, N, 0), notes=("empty last column",))
def _():
    return "".join(line + ",\r\n" for line in csv_text(table()).split("\r\n") if line).encode()


@case("odd_headers.csv", "headers with extra spaces, full-width letters, a zero-width space and a no-break space",
      "read; every header maps to its canonical column", rows=(N, N, 0),
      columns=("opportunity_id", "account", "deal_size", "project_name"))
def _():
    headers = ["  编号 ", "客户\u200b名称", "Project\u00a0Name", "销售阶段", "ｄｅａｌ　ｓｉｚｅ", "采购时间", "资金状况",
               "客户的应用或项目", "项目的预算", "我们的风险", "备注\ufeff"]
    return csv_text(table(headers=headers)).encode()


@case("header_only.csv", "a header and no rows", "read; 0 rows", rows=(0, 0, 0))
def _():
    return csv_text([HEADERS]).encode()


@case("empty.csv", "an empty file (0 bytes)", "refused: the file is empty", exit=4, error=("empty",))
def _():
    return b""


@case("mixed_values.csv", "amounts and dates as CRMs write them: 1.2亿, ¥1,200,000, 面议, #N/A, 2009.05, 2009年第2季度",
      "read; each row scored or rejected with its reason", rows=(6, None, None))
def _():
    rows = [list(r) for r in ROWS] + [["OPP-006", "某银行", "网点改造", "方案", "面议", "#N/A", "到位", "清楚", "有", "低", ""]]
    rows[0][4], rows[0][5] = "1.2亿", "2009.05"
    rows[1][4], rows[1][5] = "¥1,200,000", "2009年第2季度"
    rows[2][4], rows[2][5] = "#N/A", "N/A"
    return csv_text(table(rows)).encode()


@case("flagged_values.csv", "values read with a flag: 面议, a range (100-200万), full-width digits (１２０万), an Excel "
      "serial date (45838), a day/month date only one order reads (25/12/2025); and an ambiguous 05/06/2025",
      "read; the flagged values are scored with value_flags, the ambiguous date is rejected naming [dates]",
      rows=(6, 5, 1), rejects=((7, "purchase_date"),), columns=("value_flags",))
def _():
    rows = [list(r) for r in ROWS] + [["OPP-006", "某银行", "网点改造", "方案", "300万", "05/06/2025", "到位", "清楚", "有",
                                       "低", "日月顺序不明"]]
    rows[0][4] = "面议"
    rows[1][4] = "100-200万"
    rows[2][4] = "１２０万"
    rows[3][5] = "45838"
    rows[4][5] = "25/12/2025"
    return csv_text(table(rows)).encode()


# -- not CSV at all -------------------------------------------------------------------------------


@case("xlsx_named.csv", "an Excel workbook saved with a .csv name", "read as xlsx (the content decides)",
      rows=(N, N, 0), importer="xlsx", header_line=1)
def _():
    return workbook(lambda ws: [ws.append(row) for row in table()])


@case("html_table.xls", "an HTML table saved as .xls (a CRM's \"Excel export\")",
      "refused: says it is HTML, hint to save as xlsx or CSV", exit=4, error=("HTML page", ".xls"))
def _():
    cells = "".join(f"<tr>{''.join(f'<td>{v}</td>' for v in row)}</tr>" for row in table())
    return (f'<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta charset="utf-8"></head>'
            f"<body><table>{cells}</table></body></html>").encode()


@case("legacy_ole2.xls", "an OLE2 file with nothing past its signature (a damaged .xls)", "refused: says it is a "
      "damaged Excel 97-2003 workbook, hint to save as xlsx", exit=4, error=("damaged Excel 97-2003", "xlsx"))
def _():
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Workbook"


@case("xls_export.xls", "a legacy Excel 97-2003 workbook (as WPS and ERP systems export), a title row above the "
      "header and a 合计 row", "read as xls: header on row 2, the totals row left out", rows=(N, N, 0),
      importer="xls", header_line=2, notes=("header is on row 2", "totals row"))
def _():
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("销售机会")
    for r, row in enumerate([["2025年大客户销售机会汇总表"]] + table() + [["合计"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@case("json_array.json", "one JSON array instead of JSON Lines", "refused: hint to convert with jq", exit=4,
      error=("JSON array", "jq"))
def _():
    return json.dumps([dict(zip(HEADERS, row)) for row in ROWS], ensure_ascii=False).encode()


# -- JSON Lines -------------------------------------------------------------------------------------


def jsonl(records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records).encode()


@case("api_export.jsonl", "JSON Lines from an API: numbers, nested tags and owner, a blank line, a missing key",
      "read; nested values kept as JSON text", rows=(N, N, 0), importer="jsonl", header_line=0)
def _():
    records = [dict(zip(HEADERS, row)) for row in ROWS]
    records[0]["tags"] = ["key", "energy"]
    records[1]["owner"] = {"name": "张伟", "team": 3}
    records[2]["标的"] = 250000
    del records[3]["备注"]
    return jsonl(records[:2]) + b"\n" + jsonl(records[2:])


@case("jsonl_bad_lines.jsonl", "JSON Lines with a truncated line and a line that is an array",
      "refused: each bad line named", exit=4, error=("line 3", "line 5", "not valid JSON"))
def _():
    records = [json.dumps(dict(zip(HEADERS, row)), ensure_ascii=False) for row in ROWS]
    records[2] = records[2][:30]
    records[4] = "[1, 2, 3]"
    return jsonl(records)


@case("jsonl_nan.jsonl", "NaN and Infinity, which many writers emit but JSON does not allow",
      "refused: the lines named", exit=4, error=("line 2", "NaN", "line 4", "Infinity"))
def _():
    records = [json.dumps(dict(zip(HEADERS, row)), ensure_ascii=False) for row in ROWS]
    records[1] = records[1].replace('"1.5亿"', "NaN")
    records[3] = records[3].replace('"30万"', "Infinity")
    return jsonl(records)


@case("jsonl_duplicate_keys.jsonl", "a key repeated in one object", "refused: the line and the key", exit=4,
      error=("line 3", "appears twice", "标的"))
def _():
    records = [json.dumps(dict(zip(HEADERS, row)), ensure_ascii=False) for row in ROWS]
    records[2] = records[2][:-1] + ', "标的": "1"}'
    return jsonl(records)


# -- Excel workbooks --------------------------------------------------------------------------------


def workbook(fill, sheets: tuple[str, ...] = ("商机",)) -> bytes:
    """An xlsx made by openpyxl, with fixed timestamps so the bytes are the same every run."""
    import openpyxl

    book = openpyxl.Workbook()
    book.properties.created = book.properties.modified = datetime(2025, 1, 1)
    first = book.active
    first.title = sheets[0]
    worksheets = [first] + [book.create_sheet(title) for title in sheets[1:]]
    fill(*worksheets)
    buffer = io.BytesIO()
    book.save(buffer)
    return fixed_zip(buffer.getvalue())


def fixed_zip(data: bytes, replace: dict[str, bytes] | None = None, level: int = 6) -> bytes:
    """The same zip with fixed timestamps (and some members replaced)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = (replace or {}).get(info.filename, src.read(info.filename))
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-01-01T00:00:00Z", body)
            member = zipfile.ZipInfo(info.filename, STAMP)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, body, compresslevel=level)
    return out.getvalue()


@case("xlsx_title_totals.xlsx", "a workbook with a merged title row, an export-date row, the header on row 3, "
      "an empty row and a 合计 row", "header found on row 3; the totals row left out with a warning",
      rows=(N, N, 0), importer="xlsx", header_line=3, notes=("header is on row 3", "totals row"))
def _():
    def fill(ws):
        ws.append(["2025年大客户销售机会汇总表"])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
        ws.append(["导出时间", "2025-01-01"])
        ws.append(HEADERS)
        for row in ROWS[:3]:
            ws.append(row)
        ws.append([None] * len(HEADERS))
        for row in ROWS[3:]:
            ws.append(row)
        ws.append(["合计", None, None, None, "=SUM(E4:E9)"])
    return workbook(fill)


@case("xlsx_values.xlsx", "typed cells: IDs as text with leading zeros, amounts as numbers, a 35% margin, dates as "
      "dates, and one Excel serial number (45292) in the date column",
      "read; IDs and numbers as written (no .0), dates as ISO text, the serial number read as a date and flagged",
      rows=(3, None, None), importer="xlsx", notes=("Excel serial dates",), columns=("margin",))
def _():
    def fill(ws):
        ws.append(["编号", "客户名称", "标的", "采购时间", "我们的利润", "项目的预算"])
        ws.append(["00123", "华能集团", 12000000, datetime(2025, 9, 1), 0.35, "有"])
        ws.append(["00124", "上海申通", 150000000.0, 45292, 0.2, "部分"])
        ws.append(["00125", "Acme Corp", 250000.5, "2025-Q4", "18%", "无"])
        for row in (2, 3):
            ws.cell(row=row, column=5).number_format = "0%"
        ws.cell(row=2, column=4).number_format = "yyyy-mm-dd"
    return workbook(fill)


@case("xlsx_formula_no_cache.xlsx", "formulas saved by a program that does not calculate (no cached values)",
      "read; the formula cells read as empty and reported with their cells", rows=(N, N, 0), importer="xlsx",
      notes=("no cached value", "E2"))
def _():
    def fill(ws):
        ws.append(HEADERS)
        for i, row in enumerate(ROWS, start=2):
            ws.append(row[:4] + ([f"=1200*{i}"] if i == 2 else [row[4]]) + row[5:])
    return workbook(fill)


@case("xlsx_second_sheet.xlsx", "the first sheet holds instructions, the data is on the second",
      "the first sheet with a known header is read, with a note", rows=(N, N, 0), importer="xlsx",
      notes=("read sheet '商机'",))
def _():
    def fill(notes, data):
        notes.append(["填写说明"])
        notes.append(["每行一个销售机会"])
        data.append(HEADERS)
        for row in ROWS:
            data.append(row)
    return workbook(fill, sheets=("说明", "商机"))


@case("xlsx_missing_sheet.xlsx", "the same workbook with --sheet naming a sheet it does not have",
      "refused: the sheets it has are listed", exit=4, args=("--sheet", "Deals"), error=("no sheet 'Deals'", "说明"))
def _():
    return CASE_BYTES["xlsx_second_sheet.xlsx"]


@case("zip_bomb.xlsx", "a zip bomb: 20 MB of sheet XML deflated to about 60 KB (ratio over 300)",
      "refused before inflating, from the zip directory", exit=4, error=("before inflating", "zip bomb"))
def _():
    base = workbook(lambda ws: ws.append(HEADERS))
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    sheet += row * (20_000_000 // len(row)) + b"</sheetData></worksheet>"
    return fixed_zip(base, {"xl/worksheets/sheet1.xml": sheet}, level=9)


@case("zip_declared_huge.xlsx", "a small workbook whose zip directory declares 4 GB for its sheet",
      "refused before inflating, from the zip directory", exit=4, error=("before inflating",))
def _():
    data = bytearray(CASE_BYTES["xlsx_named.csv"])
    name = b"xl/worksheets/sheet1.xml"
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(name))  # its central directory entry
    data[at + 24:at + 28] = (0xFFFF_FF00).to_bytes(4, "little")  # uncompressed size
    return bytes(data)


@case("xlsx_entities.xlsx", "a sheet whose XML declares entities (\"billion laughs\")",
      "refused by defusedxml before any expansion", exit=4, error=("entities",))
def _():
    base = workbook(lambda ws: ws.append(HEADERS))
    sheet = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
             b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row></sheetData></worksheet>')
    return fixed_zip(base, {"xl/worksheets/sheet1.xml": sheet})


CASE_BYTES: dict[str, bytes] = {}


def build() -> dict[str, bytes]:
    for item in CASES:
        CASE_BYTES[item["file"]] = item["build"]()
    return dict(CASE_BYTES)


def expected() -> list[dict]:
    return [{k: v for k, v in item.items() if k != "build"} for item in CASES]


def markdown() -> str:
    lines = ["| file | what it is | outcome | exit |", "|---|---|---|---|"]
    for item in CASES:
        env = " ".join(f"{k}={v}" for k, v in item["env"].items())
        args = " ".join(item["args"])
        extra = f" (with `{' '.join(p for p in (env, args) if p)}`)" if env or args else ""
        lines.append(f"| `{item['file']}` | {item['what']} | {item['outcome']}{extra} | {item['exit']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    files = build()
    manifest = json.dumps(expected(), ensure_ascii=False, indent=1) + "\n"
    if "--table" in argv:
        print(markdown())
        return 0
    if "--check" in argv:
        stale = [name for name, data in files.items() if not (HERE / name).is_file() or (HERE / name).read_bytes() != data]
        if (HERE / "expected.json").read_text(encoding="utf-8") != manifest:
            stale.append("expected.json")
        if stale:
            print(f"out of date: {', '.join(stale)} (run python tests/corpus/make_corpus.py)", file=sys.stderr)
            return 1
        return 0
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    (HERE / "expected.json").write_text(manifest, encoding="utf-8")
    print(f"wrote {len(files)} files and expected.json to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
