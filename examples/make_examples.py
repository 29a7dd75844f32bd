"""Regenerate the example exports in this folder (deterministic: the rows are written out below).

    python examples/make_examples.py          # writes opportunities_{zh,en}.csv and stakeholders_{zh,en}.csv

- ``opportunities_zh.csv``: a small export as a Chinese sales team keeps it, with the headers and the
  vocabulary of the source documents (信息初始表 + 销售机会评估表), encoded GB18030 without a BOM and with
  CRLF line ends, as Excel on a Chinese Windows saves "CSV". Projects A–D are the four rows of the
  seed's 信息初始表.
- ``opportunities_en.csv``: the same idea in English, UTF-8, with the canonical column names as headers.

In both files two rows are deliberately bad, so ``kam score`` demonstrates the rejects file; see
README.md in this folder. The customers, projects and people are invented.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

HERE = Path(__file__).resolve().parent

ZH_HEADERS = [
    "编号", "客户名称", "项目名称", "采购时间", "标的", "人脉资源", "信息来源渠道", "资金来源", "资金状况", "销售阶段",
    # the ten items of 销售机会评估表 (item 6, 我们的短期销售收入, is 标的 above)
    "客户的应用或项目", "客户的业务状况", "客户的项目立项业务状况", "项目的预算", "项目对客户的紧迫性",
    "我们的未来销售收入", "我们的利润", "我们的风险", "对我们扩充市场的战略价值",
    "竞争对手", "销售经理", "备注",
]

# One tuple per opportunity, in ZH_HEADERS order. Blank cells, 未知 and "-" are valid: the criterion
# they feed is "unknown" and earns no points. Stray spaces around a value are trimmed.
ZH_ROWS = [
    # -- the four projects of the seed's 信息初始表 (项目 A–D: 采购时间, 标的 in 亿, 人脉资源, 资金来源, 资金状况).
    #    The seed's 信息来源渠道 for them names who inside the customer told us (决策者提供, 员工提供,
    #    支持者提供); kamcore's 信息来源渠道 is the lead channel of 客户的来源 (门市, 电话, E-mail, 老客户介绍,
    #    销售自拓, 市场活动, 其他), so the informant is kept in 备注.
    ("KA-2009-001", "江北市财政局", "项目A：财政预算一体化平台", "2009.05", "1亿", "决策者、支持者", "老客户介绍",
     "政府", "到位", "方案", "清楚", "稳定", "已立项", "有", "紧迫", "高", "32%", "低", "高",
     "浪潮、用友", "张伟", "信息初始表项目A；信息由决策者提供"),
    ("KA-2009-002", "东海银行股份有限公司", "项目B：核心业务系统升级", "2010.1", "1.5亿", "支持者", "销售自拓",
     "银行", "未到位", "意向", "部分清楚", "强劲", "立项中", "部分", "一般", "高", "25%", "中", "高",
     "IBM", "李娜", "信息初始表项目B；信息由决策者提供；资金未到位"),
    ("KA-2009-003", "远航实业集团", "项目C：集团ERP", "2009.12", "8亿", "支持者", "市场活动",
     "企业自筹", "一半到位", "谈判成交", "清楚", "强劲", "健全", "有", "清楚", "高", "18%", "中", "高",
     "SAP、Oracle、金蝶", "王强", "信息初始表项目C；信息由员工提供"),
    ("KA-2009-004", "南岭港务集团", "项目D：港口物流信息平台", "2009.10", "5亿", "决策者", "老客户介绍",
     "银行", "未知", "意向", "部分清楚", "稳定", "立项中", "未知", "一般", "中", "", "中", "高",
     "", "刘洋", "信息初始表项目D；信息由支持者提供；资金状况待核实"),
    # -- the rest of the pipeline
    ("KA-2009-005", "明川市人民医院", "HIS系统改造", "2009/5/1", "¥1,200,000", "支持者", "电话",
     "政府", "到位", "谈判成交", "清楚", "稳定", "已立项", "有", "紧迫", "中", "30%", "低", "中",
     "卫宁", "陈静", ""),
    ("KA-2009-006", "青禾乳业有限公司", "渠道管理系统", "2009-08-15", "120万", "支持者", "E-mail",
     "企业自筹", "到位", "方案", "清楚", "强劲", "已立项", "有", "一般", "高", "35%", "低", "中",
     "无", "李娜", "网站表单留言"),
    ("KA-2009-007", "西岭电力公司", "营销管理系统", "2009年11月", "3,500,000", "决策者、教练", "老客户介绍",
     "企业自筹", "到位", "谈判成交", "清楚", "稳定", "健全", "有", "清楚", "高", "28%", "低", "高",
     "南瑞", "张伟", "老客户二期"),
    ("KA-2009-008", "滨海新区管委会", "智慧园区一期", "2010年第1季度", "2.3亿", "支持者", "市场活动",
     "政府", "一半到位", "意向", "部分清楚", "强劲", "立项中", "部分", "一般", "高", "20%", "中", "高",
     "华为、中兴", "王强", "展会结识"),
    ("KA-2009-009", "金桥证券", "数据仓库", "2009-Q4", "86万元", "", "电话",
     "企业自筹", "到位", "潜在", "不清楚", "稳定", "未立项", "无", "不急", "中", "", "中", "中",
     "未知", "刘洋", "刚接触，需求未明"),
    ("KA-2009-010", "华北钢铁集团", "供应链协同平台", "2010.3", "6,800万", "决策者", "销售自拓",
     "银行", "未到位", "意向", "部分清楚", "疲弱", "立项中", "部分", "一般", "中", "15%", "高", "中",
     "SAP", "陈静", "行业下行，预算可能削减"),
    ("KA-2009-011", "东城区教育局", "教育云平台", "2009.09", "450万", "支持者", "门市",
     "政府", "到位", "方案", " 清楚 ", "稳定", "已立项", " 有 ", "紧迫", "低", "22%", "低", "中",
     "科大讯飞", "李娜", "单元格前后有空格（可接受）"),
    ("KA-2009-012", "恒信保险", "理赔影像系统", "2009/12/20", "￥2,800,000", "教练", "老客户介绍",
     "企业自筹", "到位", "谈判成交", "清楚", "强劲", "已立项", "有", "清楚", "500万", "26%", "低", "中",
     "无", "张伟", "未来销售收入按金额填写；全角￥"),
    ("KA-2009-013", "北岸石化", "安全生产监控", "2010.06", "1.8亿", "支持者", "其他",
     "企业自筹", "一半到位", "方案", "部分清楚", "稳定", "立项中", "部分", "一般", "高", "-", "中", "高",
     "霍尼韦尔、西门子", "王强", "利润待测算"),
    ("KA-2009-014", "南湖大学", "一卡通升级", "2009.07", "95万", "", "电话",
     "政府", "到位", "意向", "清楚", "稳定", "已立项", "有", "一般", "低", "18%", "低", "低",
     "新开普", "刘洋", ""),
    ("KA-2009-015", "天衡物流", "仓储管理系统", "2009-10-08", "60万", "支持者", "E-mail",
     "企业自筹", "未到位", "潜在", "不清楚", "疲弱", "未立项", "无", "不急", "低", "12%", "高", "低",
     "未知", "陈静", "对方预算紧张"),
    ("KA-2009-016", "瑞丰农商银行", "信贷管理系统", "2009年第4季度", "2,600万", "决策者、支持者", "老客户介绍",
     "企业自筹", "到位", "谈判成交", "清楚", "稳定", "已立项", "有", "紧迫", "中", "33%", "低", "中",
     "长亮科技", "李娜", ""),
    ("KA-2009-017", "江北市公安局", "视频联网平台", "2010.2", "9,000万", "支持者", "销售自拓",
     "政府", "一半到位", "方案", "清楚", "强劲", "已立项", "部分", "紧迫", "高", "21%", "中", "高",
     "海康、大华", "张伟", "需与集成商联合投标"),
    ("KA-2009-018", "安泰制药", "GMP质量管理", "2009/9/30", "380万", "教练", "市场活动",
     "企业自筹", "到位", "方案", "清楚", "强劲", "健全", "有", "清楚", "中", "38%", "低", "中",
     "", "王强", ""),
    ("KA-2009-019", "远东航空服务", "客户关系管理", "", "150万", "", "电话",
     "企业自筹", "", "潜在", "部分清楚", "未知", "", "", "", "中", "", "", "中",
     "", "刘洋", "大部分信息待收集（空白=未知）"),
    ("KA-2009-020", "星河传媒", "内容管理平台", "2009.11", "15万美元", "支持者", "E-mail",
     "企业自筹", "到位", "意向", "清楚", "稳定", "立项中", "有", "一般", "低", "30%", "中", "低",
     "Adobe", "陈静", "美元报价，按[currency.rates]折算"),
    ("KA-2009-021", "岭南水务", "管网GIS系统", "2009.06", "720万", "决策者", "老客户介绍",
     "政府", "到位", "赢单", "清楚", "稳定", "已立项", "有", "紧迫", "中", "27%", "低", "中",
     "超图", "李娜", "已签约"),
    ("KA-2009-022", "鸿运汽车", "经销商管理系统", "2009.08", "200万", "", "门市",
     "企业自筹", "未到位", "丢单", "部分清楚", "疲弱", "未立项", "无", "不急", "低", "10%", "高", "低",
     "金蝶、用友", "张伟", "输给低价竞争"),
    ("KA-2009-023", "东华能源", "能源管控平台", "2010.4", "3,200万", "支持者", "其他",
     "银行", "一半到位", "意向", "部分清楚", "强劲", "立项中", "部分", "一般", "高", "24%", "中", "高",
     "施耐德", "王强", ""),
    # -- deliberately bad rows: each lands in the rejects file, one line per problem
    ("KA-2009-024", "北岸港口集团", "码头调度系统", "2009.12", "一百多万", "支持者", "销售自拓",
     "企业自筹", "到位", "方案", "清楚", "稳定", "已立项", "有", "一般", "中", "25%", "中", "中",
     "", "刘洋", "坏行示例：标的“一百多万”不是金额（面议可以：记为未知并标注）"),
    ("KA-2009-025", "明川市交通局", "智能交通一期", "下半年", "4,000万", "决策者", "老客户介绍",
     "政府", "到位", "跟进中", "清楚", "稳定", "已立项", "有", "紧迫", "高", "20%", "低", "高",
     "", "陈静", "坏行示例：采购时间“下半年”不是日期，销售阶段“跟进中”不在词表中"),
]

EN_HEADERS = [
    "opportunity_id", "account", "project_name", "purchase_date", "deal_size", "currency", "contacts", "lead_source",
    "funding_source", "funding_status", "stage",
    "need_clarity", "business_condition", "approval_status", "budget_status", "urgency",
    "future_revenue", "margin", "risk", "strategic_value",
    "competitors", "owner", "notes",
]

EN_ROWS = [
    ("OPP-1001", "Northwind Health", "Patient portal", "2025-03-15", "1,200,000", "USD", "decision maker", "referral",
     "self_funded", "in place", "negotiation", "clear", "strong", "approved", "allocated", "high",
     "high", "32%", "low", "high", "Epic, Cerner", "A. Moreno", ""),
    ("OPP-1002", "Contoso Bank", "Core banking upgrade", "2025-Q3", "$4.5m", "", "coach", "self-sourced",
     "bank", "not in place", "intent", "partial", "stable", "in progress", "partial", "medium",
     "high", "24%", "medium", "high", "IBM", "J. Chen", "loan not yet approved"),
    ("OPP-1003", "Fabrikam Manufacturing", "Plant MES", "2025/6", "850k", "EUR", "", "event",
     "self_funded", "partial", "solution", "clear", "strong", "approved", "allocated", "medium",
     "medium", "28", "low", "medium", "Siemens", "K. Novak", "met at trade show"),
    ("OPP-1004", "City of Riverton", "Permit system", "2025-09-01", "USD 320,000", "", "", "phone",
     "government", "in place", "solution", "clear", "stable", "approved", "allocated", "high",
     "low", "20%", "low", "medium", "", "A. Moreno", ""),
    ("OPP-1005", "Tailspin Logistics", "Warehouse management", "2025-11", "150000", "USD", "", "email",
     "self_funded", "not in place", "potential", "unclear", "weak", "not started", "none", "low",
     "low", "12%", "high", "low", "unknown", "J. Chen", "early contact"),
    ("OPP-1006", "Woodgrove Insurance", "Claims imaging", "2025-04-30", "€640,000", "", "champion", "referral",
     "self_funded", "in place", "negotiation", "clear", "strong", "approved", "allocated", "high",
     "2,000,000", "35%", "low", "medium", "none", "K. Novak", "future revenue given as an amount"),
    ("OPP-1007", "Adventure Works", "E-commerce replatform", "2025-Q4", "2.1m", "USD", "", "walk-in",
     "self_funded", "partial", "intent", "partial", "strong", "in progress", "partial", "medium",
     "high", "22%", "medium", "high", "Salesforce; Adobe", "S. Patel", ""),
    ("OPP-1008", "Litware University", "Student records", "2026-01-15", "480,000", "USD", "", "other",
     "government", "in place", "solution", "clear", "stable", "approved", "allocated", "medium",
     "medium", "", "low", "medium", "Ellucian", "S. Patel", "margin not yet calculated"),
    ("OPP-1009", "Proseware Energy", "Grid analytics", "2025-08", "3,000,000", "USD", "decision maker", "self_sourced",
     "bank", "partial", "solution", "partial", "strong", "in progress", "partial", "high",
     "high", "18%", "medium", "high", "GE, Schneider", "A. Moreno", ""),
    ("OPP-1010", "Trey Research", "Lab notebook", "2025-05-20", "95,000", "USD", "", "email",
     "self_funded", "in place", "intent", "clear", "stable", "approved", "allocated", "low",
     "low", "30%", "low", "low", "", "J. Chen", ""),
    ("OPP-1011", "Coho Winery", "Distributor portal", "N/A", "60k", "USD", "", "walk-in",
     "self_funded", "not in place", "potential", "unclear", "weak", "not started", "none", "low",
     "low", "10%", "high", "low", "n/a", "K. Novak", "N/A cells count as unknown"),
    ("OPP-1012", "Alpine Ski House", "Booking engine", "2025-10-01", "220,000", "USD", "coach", "referral",
     "self_funded", "in place", "negotiation", "clear", "stable", "approved", "allocated", "high",
     "medium", "27%", "low", "medium", "", "S. Patel", ""),
    ("OPP-1013", "Margie's Travel", "CRM rollout", "2025-07", "310,000", "USD", "", "event",
     "self_funded", "partial", "solution", "partial", "stable", "in progress", "partial", "medium",
     "medium", "21%", "medium", "medium", "HubSpot", "A. Moreno", ""),
    ("OPP-1014", "Blue Yonder Airlines", "Crew scheduling", "2026-Q1", "5.2m", "USD", "decision maker", "self_sourced",
     "bank", "not in place", "intent", "partial", "weak", "in progress", "none", "medium",
     "high", "15%", "high", "high", "Sabre, Lufthansa Systems", "J. Chen", "airline under cost pressure"),
    ("OPP-1015", "Wingtip Toys", "Retail POS", "2025-06-30", "180,000", "USD", "", "phone",
     "self_funded", "in place", "won", "clear", "strong", "approved", "allocated", "high",
     "medium", "31%", "low", "medium", "", "K. Novak", "signed"),
    ("OPP-1016", "Fourth Coffee", "Loyalty app", "2025-05", "75,000", "USD", "", "email",
     "self_funded", "not in place", "lost", "partial", "weak", "not started", "none", "low",
     "low", "8%", "high", "low", "3", "S. Patel", "lost on price"),
    ("OPP-1017", "Lucerne Publishing", "Content platform", "2025-12-01", "410,000", "USD", "", "referral",
     "self_funded", "in place", "solution", "clear", "stable", "approved", "allocated", "medium",
     "medium", "29%", "low", "medium", "Adobe", "A. Moreno", ""),
    ("OPP-1018", "Humongous Insurance", "Policy admin", "2026-03", "2,750,000", "USD", "champion", "self_sourced",
     "self_funded", "partial", "solution", "clear", "strong", "in progress", "partial", "high",
     "high", "23%", "medium", "high", "Guidewire", "J. Chen", ""),
    ("OPP-1019", "Graphic Design Institute", "Learning platform", "", "130,000", "USD", "", "other",
     "", "", "potential", "", "", "", "", "",
     "low", "", "", "low", "", "K. Novak", "almost nothing known yet (blank = unknown)"),
    ("OPP-1020", "Consolidated Messenger", "Fleet tracking", "2025-09", "560,000", "USD", "", "phone",
     "bank", "partial", "intent", "partial", "stable", "in progress", "partial", "medium",
     "medium", "19%", "medium", "medium", "Samsara", "S. Patel", ""),
    ("OPP-1021", "Wide World Importers", "Customs automation", "2025-11-15", "890,000", "USD", "decision maker",
     "referral", "self_funded", "in place", "negotiation", "clear", "strong", "approved", "allocated", "high",
     "high", "34%", "low", "high", "", "A. Moreno", ""),
    ("OPP-1022", "School of Fine Art", "Digital archive", "2026-02", "45,000", "USD", "", "email",
     "government", "not in place", "potential", "unclear", "stable", "not started", "none", "low",
     "low", "25%", "medium", "low", "", "J. Chen", ""),
    ("OPP-1023", "VanArsdel Ltd", "Analytics suite", "2025-10", "¥3,600,000", "", "", "event",
     "self_funded", "in place", "solution", "clear", "strong", "approved", "allocated", "medium",
     "medium", "26%", "low", "medium", "Tableau", "K. Novak", "quoted in CNY"),
    # -- deliberately bad rows
    ("OPP-1024", "Northwind Traders", "Order portal", "2025-08-01", "about 1.2M", "USD", "", "referral",
     "self_funded", "in place", "solution", "clear", "stable", "approved", "allocated", "medium",
     "medium", "25%", "low", "medium", "", "S. Patel", "bad row: deal_size 'about 1.2M' is not an amount (TBD would be: missing, flagged)"),
    ("OPP-1025", "Tailwind Traders", "Mobile app", "next spring", "250,000", "USD", "", "phone",
     "self_funded", "in place", "on hold", "clear", "stable", "approved", "allocated", "medium",
     "medium", "25%", "low", "medium", "", "A. Moreno",
     "bad row: purchase_date is not a date and stage 'on hold' is not a stage"),
]


# The people of projects A–D (关键人物信息表 + 角色表 + 客户全貌), with the seed's headers. Blank role, style or
# influence cells are what kam infers (from 职务/所在处室, from 气质/思想/口才, from 受谁影响/能影响谁); 生日 and
# 兴趣 are personal fields: `kam classify` leaves them out unless asked, and they never reach the scored file.
ZH_PEOPLE_HEADERS = [
    "编号", "姓名", "所在处(科)室", "职务", "角色", "性格", "气质", "思想", "口才", "对我们的支持度", "项目影响力",
    "受谁影响", "能影响谁", "亲近度关系", "信任度关系", "是否有可能成为我们的教练", "关注焦点", "生日", "兴趣",
]

ZH_PEOPLE = [
    # 项目A 江北市财政局 (方案): every role known, the decision maker supports us, a coach in 预算处 -> qualified
    ("KA-2009-001", "王建国", "局领导", "局长", "", "", "急躁饶舌", "激进", "普通", "支持", "", "", "李明、赵红",
     "上升", "上升", "否", "政绩、预算执行进度", "3月12日", "围棋"),
    ("KA-2009-001", "李明", "局领导", "分管信息化副局长", "", "", "稳重寡言", "稳健保守", "口拙", "中立", "",
     "王建国", "赵红", "持平", "上升", "否", "系统安全", "", ""),
    ("KA-2009-001", "赵红", "信息中心", "主任", "", "猫头鹰", "", "", "", "支持", "", "李明", "周婷",
     "上升", "上升", "是", "技术架构、运维", "", "摄影"),
    ("KA-2009-001", "孙伟", "预算处", "处长", "", "", "稳重寡言", "稳健保守", "能说", "支持", "高", "", "",
     "上升", "持平", "否", "预算编制效率", "", ""),
    ("KA-2009-001", "周婷", "预算处", "科员", "教练", "", "", "", "", "", "", "赵红", "", "上升", "上升", "是",
     "", "", ""),
    # 项目B 东海银行 (意向, 资金未到位): no decision maker known yet, no coach, trust falling with the user side
    ("KA-2009-002", "刘志强", "科技部", "总经理", "", "", "急躁饶舌", "激进", "能说", "支持", "", "", "行长",
     "上升", "持平", "否", "核心系统稳定性", "", ""),
    ("KA-2009-002", "黄丽", "运营管理部", "副总经理", "", "", "", "", "", "中立", "", "刘志强", "", "持平", "下降",
     "否", "柜面效率", "", ""),
    # 项目C 远航实业集团 (谈判成交): the chairman opposes us (he prefers another vendor) -> disqualified
    ("KA-2009-003", "张海", "集团总部", "董事长", "", "老虎", "", "", "", "反对", "高", "", "郑凯、吴敏",
     "下降", "下降", "否", "投资回报", "", "高尔夫"),
    ("KA-2009-003", "吴敏", "财务部", "财务总监", "", "", "稳重寡言", "稳健保守", "普通", "支持", "", "张海", "",
     "上升", "上升", "否", "成本", "", ""),
    ("KA-2009-003", "郑凯", "信息技术部", "IT总监", "", "", "", "", "", "中立", "", "张海", "马超",
     "持平", "持平", "否", "集成难度", "", ""),
    ("KA-2009-003", "马超", "ERP项目组", "项目经理", "项目牵头人", "", "", "", "", "支持", "", "郑凯", "",
     "下降", "上升", "是", "上线时间", "", ""),
    # 项目D 南岭港务集团 (意向, 资金状况待核实): one contact only, the general manager -> single-threaded
    ("KA-2009-004", "林涛", "公司领导", "总经理", "", "无尾熊", "", "", "", "支持", "", "", "", "上升", "上升", "否",
     "港口吞吐效率", "", "钓鱼"),
]

EN_PEOPLE_HEADERS = [
    "opportunity_id", "name", "department", "title", "role", "style", "temperament", "thinking", "eloquence",
    "stance", "influence", "influenced_by", "influences", "closeness_trend", "trust_trend", "coach_potential", "focus",
    "birthday",
]

EN_PEOPLE = [
    # OPP-1001 Northwind Health (negotiation): the CEO supports us, a champion in nursing, every role known
    ("OPP-1001", "Dana Whitfield", "Executive", "Chief Executive Officer", "", "", "impetuous", "radical", "average",
     "support", "", "", "Raj Patel; Mia Chen", "up", "up", "no", "time to value", "1970-04-02"),
    ("OPP-1001", "Raj Patel", "Information Technology", "Director of IT", "", "owl", "", "", "", "neutral", "",
     "Dana Whitfield", "", "flat", "up", "no", "integration with Epic", ""),
    ("OPP-1001", "Mia Chen", "Nursing", "Nursing Director", "", "", "steady", "conservative", "articulate", "support",
     "", "", "Leo Park", "up", "up", "yes", "nurse workload", ""),
    ("OPP-1001", "Leo Park", "Nursing", "Charge Nurse", "champion", "", "", "", "", "", "", "Mia Chen", "", "up", "up",
     "yes", "", ""),
    # OPP-1002 Contoso Bank (intent): an IT contact only -> single-threaded, no decision maker, no coach
    ("OPP-1002", "Sam Oduya", "IT", "VP of IT", "", "", "", "", "", "support", "", "", "", "flat", "down", "no",
     "core banking risk", ""),
    # OPP-1003 Fabrikam Manufacturing (solution): the plant's MD opposes with high influence
    ("OPP-1003", "Greta Lind", "Management", "Managing Director", "", "tiger", "", "", "", "oppose", "high", "",
     "Tom Berg", "down", "down", "no", "cost", ""),
    ("OPP-1003", "Tom Berg", "Operations", "Operations Manager", "", "", "", "", "", "support", "", "Greta Lind", "",
     "up", "flat", "yes", "downtime", ""),
    ("OPP-1003", "Ana Ruiz", "IT", "IT Manager", "", "", "", "", "", "neutral", "", "", "", "flat", "flat", "no",
     "security", ""),
]


def render(headers: list[str], rows: list[tuple], line_end: str) -> str:
    for row in rows:
        assert len(row) == len(headers), (row[0], len(row), len(headers))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def main() -> None:
    zh = render(ZH_HEADERS, ZH_ROWS, "\r\n")
    (HERE / "opportunities_zh.csv").write_bytes(zh.encode("gb18030"))  # no BOM, as Excel writes it
    en = render(EN_HEADERS, EN_ROWS, "\n")
    (HERE / "opportunities_en.csv").write_bytes(en.encode("utf-8"))
    print(f"wrote {HERE / 'opportunities_zh.csv'} ({len(ZH_ROWS)} rows, GB18030) and "
          f"{HERE / 'opportunities_en.csv'} ({len(EN_ROWS)} rows, UTF-8)")
    (HERE / "stakeholders_zh.csv").write_bytes(render(ZH_PEOPLE_HEADERS, ZH_PEOPLE, "\r\n").encode("gb18030"))
    (HERE / "stakeholders_en.csv").write_bytes(render(EN_PEOPLE_HEADERS, EN_PEOPLE, "\n").encode("utf-8"))
    print(f"wrote {HERE / 'stakeholders_zh.csv'} ({len(ZH_PEOPLE)} people, GB18030) and "
          f"{HERE / 'stakeholders_en.csv'} ({len(EN_PEOPLE)} people, UTF-8)")


if __name__ == "__main__":
    main()
