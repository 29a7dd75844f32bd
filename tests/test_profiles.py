"""CRM profiles: Salesforce and HubSpot exports onto the canonical schema, detected or chosen.

The exports are the corpus files (tests/corpus/, made by make_corpus.py) and workbooks written here
with openpyxl; every run goes through ``kam score`` or ``kamcore.score_frame``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import invoke, kam_env, read_csv, read_rejects, read_summary  # noqa: E402,F401

import kamcore  # noqa: E402
from kamcore import hookimpl  # noqa: E402
from kamcore.plugins import Kam, get_kam  # noqa: E402
from kamcore.registry import Profile  # noqa: E402
from kamcore.schema import OPPORTUNITY  # noqa: E402

pytestmark = pytest.mark.usefixtures("kam_env")
CORPUS = Path(__file__).parent / "corpus"


def score(*args) -> tuple[pl.DataFrame, dict, object]:
    out = Path("out.csv").resolve()
    result = invoke("score", *args, "-o", out)
    assert result.exit_code == 0, result.output
    return read_csv(out), read_summary(out), result


def test_a_salesforce_report_is_detected_and_mapped(caplog):
    scored, summary, result = score(CORPUS / "salesforce_report.csv")
    assert summary["rows"] == {"in": 4, "scored": 4, "rejected": 0}
    assert summary["config"]["profile"] == "salesforce"
    assert any(n.startswith("detected a Salesforce export") for n in summary["notes"])
    assert any("using --profile salesforce" in r.getMessage() for r in caplog.records)  # a warning on stderr
    assert scored["opportunity_id"].to_list() == ["0061x00000A1", "0061x00000A2", "0061x00000A3", "0061x00000A4"]
    assert scored["project_name"].to_list()[:2] == ["Data platform", "CRM rollout"]
    assert scored["account"].to_list()[0] == "Acme Corp" and scored["owner"].to_list()[0] == "Jane Roe"
    assert scored["stage"].to_list() == ["potential", "intent", "negotiation", "won"]
    # US dates, m/d/yyyy: 6/30/2025 is read by the profile's order, with no flag
    assert scored["purchase_date"].to_list() == ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-15"]
    assert scored["value_flags"].to_list() == [None] * 4


def test_a_hubspot_export_is_detected_with_its_internal_stage_codes():
    scored, summary, _ = score(CORPUS / "hubspot_deals.csv")
    assert summary["config"]["profile"] == "hubspot"
    assert scored["opportunity_id"].to_list() == ["9001", "9002", "9003", "9004"]  # Record ID, not made up
    assert scored["stage"].to_list() == ["potential", "intent", "negotiation", "won"]
    assert scored["purchase_date"].to_list() == ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-15"]
    assert scored["owner"].to_list()[0] == "Jane Roe"
    assert scored["Pipeline"].to_list() == ["default"] * 4  # unknown columns come back untouched


def test_generic_turns_detection_off():
    scored, summary, _ = score(CORPUS / "hubspot_deals.csv", "--profile", "generic")
    assert summary["config"]["profile"] == "generic"
    assert not any("detected" in n for n in summary["notes"])
    assert scored["opportunity_id"].to_list()[0] == "hubspot_deals-1"  # no column maps to the id
    assert "stage" not in scored.columns and "Deal Stage" in scored.columns


def test_a_profile_can_be_asked_for_by_name_and_the_summary_hash_changes():
    _, detected, _ = score(CORPUS / "salesforce_report.csv")
    _, named, _ = score(CORPUS / "salesforce_report.csv", "--profile", "Salesforce")
    _, generic, _ = score(CORPUS / "salesforce_report.csv", "--profile", "generic")
    assert named["config"] == detected["config"]
    assert generic["config"]["sha256"] != named["config"]["sha256"]  # the effective settings differ


def test_the_users_kam_toml_wins_over_the_profile(tmp_path):
    (tmp_path / "kam.toml").write_text('[dates]\norder = "dmy"\n[values.stage]\n"Qualification" = "solution"\n',
                                       encoding="utf-8")
    out = tmp_path / "out.csv"
    result = invoke("score", CORPUS / "salesforce_report.csv", "-o", out)
    assert result.exit_code == 0, result.output
    rejects = read_rejects(out)
    # 6/30/2025 is no day/month date: the user's order is used, and the row is rejected, not re-guessed
    assert rejects.select("line", "column").rows() == [(3, "purchase_date")]
    assert rejects["reason"][0] == "不是日期 / not a date: 6/30/2025 is not a valid dmy date"
    scored = read_csv(out)
    assert scored["stage"].to_list() == ["potential", "negotiation", "won"]  # A2 (Qualification) was rejected
    assert read_summary(out)["config"]["profile"] == "salesforce"


def test_a_profile_file_maps_any_other_crm(tmp_path):
    export = tmp_path / "pipedrive.csv"
    export.write_text("Deal - ID,Deal - Title,Deal - Stage,Deal - Value,Deal - Expected close date\n"
                      "11,Core banking,Proposal Made,\"150,000\",2025-05-31\n"
                      "12,Branch kiosks,Negotiations Started,80000,2025-07-15\n", encoding="utf-8")
    profile = tmp_path / "pipedrive.toml"
    profile.write_text('[profile]\nlabel = "Pipedrive"\ndetect = ["Deal - ID", "Deal - Title", "Deal - Stage"]\n'
                       '[columns]\n"Deal - ID" = "opportunity_id"\n"Deal - Title" = "project_name"\n'
                       '"Deal - Stage" = "stage"\n"Deal - Value" = "deal_size"\n'
                       '"Deal - Expected close date" = "purchase_date"\n'
                       '[values.stage]\n"Proposal Made" = "solution"\n"Negotiations Started" = "negotiation"\n',
                       encoding="utf-8")
    scored, summary, _ = score(export, "--profile", profile)
    assert summary["config"]["profile"] == "pipedrive"
    assert scored.select("opportunity_id", "stage", "deal_size").rows() == [
        ("11", "solution", "150000.0"), ("12", "negotiation", "80000.0")]


@pytest.mark.parametrize("text, message", [
    ("[profile]\ndetect = \"Deal - ID\"\n", "detect must be a list of headers"),
    ("[profile\n", "cannot read profile"),
])
def test_a_broken_profile_file_is_a_config_error(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    result = invoke("score", CORPUS / "hubspot_deals.csv", "--profile", bad, "-o", tmp_path / "out.csv")
    assert result.exit_code == 3 and message in result.output
    assert not (tmp_path / "out.csv").exists()


def test_an_unknown_profile_is_a_config_error_listing_the_known_ones(tmp_path):
    result = invoke("score", CORPUS / "hubspot_deals.csv", "--profile", "zoho", "-o", tmp_path / "out.csv")
    assert result.exit_code == 3
    assert "unknown profile 'zoho': expected one of generic, hubspot, salesforce, or a .toml file" in result.output


def test_a_salesforce_workbook_is_detected_too(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Opportunity Pipeline"])  # the report title Salesforce puts above the table
    sheet.append([])
    sheet.append(["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Fiscal Period", "Amount",
                  "Probability (%)", "Close Date", "Lead Source", "Opportunity ID"])
    sheet.append(["Jane Roe", "Acme", "Data platform", "Id. Decision Makers", "Q2-2025", 250000, 60,
                  dt.datetime(2025, 6, 30), "Partner Referral", "0061x00000B1"])
    sheet.append(["John Doe", "Globex", "Edge", "Closed Lost", "Q3-2025", 45000, 0, dt.datetime(2025, 9, 1),
                  "Trade Show", "0061x00000B2"])
    book.save(tmp_path / "report.xlsx")
    scored, summary, _ = score(tmp_path / "report.xlsx")
    assert summary["config"]["profile"] == "salesforce"
    assert scored.select("opportunity_id", "stage", "lead_source", "purchase_date").rows() == [
        ("0061x00000B1", "solution", "referral", "2025-06-30"), ("0061x00000B2", "lost", "event", "2025-09-01")]


@pytest.mark.parametrize("name", ["salesforce", "hubspot"])
def test_every_mapping_of_a_built_in_profile_names_a_canonical_column_and_code(name):
    """A typo in a profile's TOML (a column or code kam does not have) must not ship."""
    profile = get_kam().profiles()[name]
    assert len(profile.detect) >= profile.min_matches >= 3
    for header, column in profile.config["columns"].items():
        assert column in OPPORTUNITY, (header, column)
    for column, table in profile.config.get("values", {}).items():
        codes = set(OPPORTUNITY[column].vocab)
        assert set(table.values()) <= codes, (column, set(table.values()) - codes)


def test_one_profile_or_none_is_detected_from_headers():
    from kamcore.profiles import detect_profile

    profiles = get_kam().profiles()
    assert detect_profile(profiles, ["编号", "客户名称", "标的"])[0] is None
    assert detect_profile(profiles, ["Opportunity ID", "Amount", "Close Date"])[0] is None  # 3 < 4 matches
    found, hits = detect_profile(profiles, ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date"])
    assert (found.name, hits) == ("hubspot", 5)


def test_the_api_applies_a_profile_only_when_asked():
    export = pl.read_csv(CORPUS / "hubspot_deals.csv", infer_schema=False)
    plain = kamcore.score_frame(export).scored
    assert "stage" not in plain.columns
    for profile in ("hubspot", "auto"):
        scored = kamcore.score_frame(export, profile=profile).scored
        assert scored["stage"].to_list() == ["potential", "intent", "negotiation", "won"]


class Zoho:
    """A third party's profile, registered through the hook."""

    @hookimpl
    def register_profiles(self, register):
        register(Profile(name="zoho", label="Zoho CRM", detect=("Record Id", "Deal Name", "Deal Owner", "Stage"),
                         min_matches=3, config={"columns": {"Record Id": "opportunity_id", "Deal Owner": "owner"},
                                                "values": {"stage": {"Value Proposition": "solution"}},
                                                "dates": {"order": "dmy"}}))


def test_register_profiles_adds_a_detectable_profile():
    kam = Kam(load_entry_points=True)
    kam.register(Zoho(), "zoho")
    kam.check()
    assert kam.profiles().owners["zoho"] == "zoho"
    export = pl.DataFrame({"Record Id": ["z1", "z2"], "Deal Name": ["ERP", "CRM"], "Deal Owner": ["Li", "Wu"],
                           "Stage": ["Value Proposition", "won"], "Closing Date": ["05/06/2025", "2025-07-01"]})
    scored = kamcore.score_frame(export, kam=kam, profile="auto").scored
    assert scored.select("opportunity_id", "owner", "stage").rows() == [("z1", "Li", "solution"), ("z2", "Wu", "won")]
    # Closing Date is no built-in header: kept as it is, so the profile's date order never touched it
    assert scored["Closing Date"].to_list() == ["05/06/2025", "2025-07-01"]


def test_a_profile_registered_twice_is_refused():
    from kamcore.errors import PluginError

    kam = Kam(load_entry_points=True)
    kam.register(Zoho(), "zoho")
    kam.register(type("Again", (Zoho,), {})(), "zoho_again")
    kam.check()
    with pytest.raises(PluginError, match="Profile 'zoho' is registered twice"):
        kam.profiles()


def test_inspect_shows_the_detected_profile_and_its_mapping():
    result = invoke("inspect", CORPUS / "hubspot_deals.csv", "--rows", "1")
    assert result.exit_code == 0, result.output
    assert "profile     hubspot (detected from the headers)" in result.output
    assert "Deal Stage  -> stage" in result.output
    generic = invoke("inspect", CORPUS / "hubspot_deals.csv", "--profile", "generic", "--json")
    assert '"profile": "generic"' in generic.output and '"profile_detected": false' in generic.output
