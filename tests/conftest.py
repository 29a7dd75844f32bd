import os

import pytest

# A small export as a salesperson's spreadsheet gives it: Chinese and English headers mixed.
EXPORT_CSV = """\
编号,客户名称,Project,销售阶段,deal size,采购时间,资金状况,客户的应用或项目,business condition,立项状况,项目的预算,urgency,我们的未来销售收入,margin,我们的风险,strategic value,竞争对手,负责人,备注
OPP-1,华能集团,智慧电厂,方案,1200万,2025-09,到位,清楚,强劲,已立项,有,紧迫,高,35%,低,高,2,张三,ref: 国家电网; ref: 南方电网
OPP-2,Acme Corp,ERP upgrade,intent,"$250,000",2025-Q4,partial,partial,stable,in progress,partial,medium,medium,18%,medium,medium,"Oracle, SAP, Infor",Li Si,
OPP-3,上海申通,信号系统,谈判成交,1.5亿,2025-07-15,到位,清楚,稳定,已立项,有,一般,高,28%,中,高,"西门子、阿尔斯通",赵六,ref: A; ref: B; ref: C; ref: D
OPP-4,Beta Ltd,Helpdesk,potential,"80,000",2026,not in place,unclear,weak,not started,none,low,low,5%,high,low,0,Wang Wu,no references yet
OPP-5,小王商贸,门店系统,意向,30万,2026-03,一半到位,部分清楚,稳定,立项中,部分,一般,中,22%,中,中,1,王五,ref: Gamma
"""


@pytest.fixture
def clean_kam(monkeypatch, tmp_path):
    """No KAM_* switches from the caller's shell, no stray kam.toml, a fresh plugin session."""
    from kamcore import plugins

    for name in list(os.environ):
        if name.startswith("KAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def export_csv(tmp_path):
    """The export above as a UTF-8 CSV file."""
    path = tmp_path / "export.csv"
    path.write_text(EXPORT_CSV, encoding="utf-8")
    return path
