"""The canonical schema: column names, the headers that map onto them, and their vocabularies.

Importers hand the core raw text columns; :mod:`kamcore.headers` maps the headers here and
:mod:`kamcore.normalise` turns the values into these codes. Names are stable once released.
Each code has its Chinese label from the source documents (销售机会评估表, 信息初始表, 关键人物信息表).
"""

from __future__ import annotations

from attrs import frozen

# kinds of column, deciding how values are normalised
ID, TEXT, CODE, AMOUNT, CURRENCY, DATE, PERCENT, LEVEL_OR_AMOUNT, COUNT_OR_NAMES = (
    "id", "text", "code", "amount", "currency", "date", "percent", "level_or_amount", "count_or_names")


@frozen
class Column:
    """One canonical column: its kind, labels, header aliases and (for codes) its vocabulary.

    ``vocab`` maps each canonical code to (中文 label, synonyms...). Synonyms are matched after trimming,
    ignoring case.
    """

    name: str
    kind: str
    label_zh: str
    label_en: str
    aliases: tuple[str, ...] = ()
    vocab: dict[str, tuple[str, ...]] | None = None
    personal: bool = False


# yes/no as exports write them (one table, so every yes/no column reads the same spellings)
YES = ("是", "yes", "y", "true", "√", "✓", "对")
NO = ("否", "no", "n", "false", "×", "✗", "不")

LEVEL = {"high": ("高", "high", "h", "大", "较高"), "medium": ("中", "medium", "med", "m", "一般", "中等"),
         "low": ("低", "low", "l", "小", "较低")}

OPPORTUNITY_COLUMNS: tuple[Column, ...] = (
    Column("opportunity_id", ID, "编号", "Opportunity ID",
           ("编号", "机会编号", "商机编号", "项目编号", "序号", "opportunity id", "opportunityid", "opp id", "id", "deal id")),
    Column("account", TEXT, "客户名称", "Account", ("客户名称", "客户", "单位名称", "客户全称", "公司名称", "account name", "customer",
                                                      "company", "company name")),
    Column("project_name", TEXT, "项目名称", "Project", ("项目名称", "项目", "商机名称", "机会名称", "销售机会名称",
                                                        "opportunity name", "project", "deal name")),
    Column("stage", CODE, "销售阶段", "Sales stage", ("销售阶段", "阶段", "商机阶段", "机会阶段", "sales stage"), {
        "potential": ("潜在", "potential", "潜在阶段", "prospect", "prospecting", "初步接洽", "初步沟通", "线索"),
        "intent": ("意向", "intent", "意向阶段", "interest", "qualification", "需求确认", "需求确定", "需求分析"),
        "solution": ("方案", "solution", "方案阶段", "proposal", "方案报价", "方案设计", "报价", "报价阶段"),
        "negotiation": ("谈判成交", "negotiation", "谈判", "谈判成交阶段", "谈判阶段", "negotiation/review", "商务谈判",
                        "合同谈判", "谈判审核"),
        "won": ("赢单", "won", "成交", "已成交", "已签约", "closed won", "closed-won", "win"),
        "lost": ("丢单", "lost", "输单", "失败", "closed lost", "closed-lost", "loss")}),
    Column("dev_stage", CODE, "开发阶段", "Development stage", ("开发阶段", "development stage", "dev stage"), {
        "target": ("确定开发对象", "target", "开发对象的确定", "开发对象确定", "确定对象"),
        "information": ("信息收集", "information", "样品资料提供", "样品资料提供/信息收集", "信息收集与样品资料提供", "samples"),
        "assessment": ("价值评估", "assessment", "价值评估/开发程序", "开发程序", "value assessment"),
        "relationship": ("关系建立", "relationship", "建立关系"),
        "closing": ("促成成交", "closing", "成交促成")}),
    Column("lead_source", CODE, "信息来源渠道", "Lead source",
           ("信息来源渠道", "信息来源", "客户来源", "来源渠道", "来源", "商机来源", "机会来源", "lead source", "source",
            "opportunity source"), {
        # the seed's seven channels (信息来源渠道), each with the words CRMs use for what the seed says it holds
        "walk_in": ("门市", "walk_in", "walk-in", "walk in", "门店", "store", "上门", "到店", "来访"),
        "phone": ("电话", "phone", "telephone", "电话营销", "call", "公司热线", "热线", "400电话", "来电", "电话咨询",
                  "inbound call", "telemarketing"),
        "email": ("e-mail", "email", "邮件", "电子邮件", "mail", "网站", "官网", "网站留言", "在线咨询", "website",
                  "web form"),
        "referral": ("老客户介绍", "referral", "客户介绍", "转介绍", "介绍", "客户推荐", "老客户推荐", "分支机构介绍",
                     "customer referral"),
        "self_sourced": ("销售自拓", "self_sourced", "self-sourced", "自拓", "cold call", "outbound", "陌生拜访", "陌拜",
                         "自主开发", "销售开发", "朋友介绍"),
        "event": ("市场活动", "event", "活动", "展会", "trade show", "webinar", "seminar", "会议", "研讨会", "会销", "沙龙",
                  "峰会", "conference"),
        "other": ("其他", "other", "其它", "广告", "合作伙伴", "代理商", "招标公告", "advertising", "partner")}),
    Column("deal_size", AMOUNT, "标的", "Deal size",
           ("标的", "标的(单位:亿)", "标的(亿)", "金额", "项目金额", "合同金额", "预计金额", "我们的短期销售收入", "短期销售收入",
            "商机金额", "机会金额", "预计成交金额", "预计签单金额", "deal size", "amount", "deal value", "short-term revenue",
            "opportunity amount", "deal amount", "expected amount")),
    Column("currency", CURRENCY, "币种", "Currency", ("币种", "货币", "currency", "currency code")),
    Column("purchase_date", DATE, "采购时间", "Purchase date",
           ("采购时间", "采购日期", "预计采购时间", "预计成交日期", "预计成交时间", "预计签约日期", "预计签单日期", "预计关闭日期",
            "预计结单日期", "purchase date", "close date", "expected close date", "estimated close date",
            "expected close")),
    Column("funding_source", CODE, "资金来源", "Funding source", ("资金来源", "funding source"), {
        "government": ("政府", "government", "财政", "政府拨款", "财政拨款"),
        "bank": ("银行", "bank", "银行贷款", "loan"),
        "self_funded": ("企业自筹", "self_funded", "self-funded", "自筹", "self funded"),
        "other": ("其他", "other", "其它")}),
    Column("funding_status", CODE, "资金状况", "Funding status", ("资金状况", "资金状态", "funding status"), {
        "in_place": ("到位", "in_place", "in place", "已到位", "全部到位", "funded", "资金到位", "资金已到位"),
        "partial": ("一半到位", "partial", "部分到位", "partly", "partially funded", "资金部分到位"),
        "not_in_place": ("未到位", "not_in_place", "not in place", "没到位", "unfunded", "资金未到位")}),
    Column("need_clarity", CODE, "客户的应用或项目", "Customer's need / project",
           ("客户的应用或项目", "客户得应用或项目", "需求", "需求清晰度", "need clarity", "need", "needs"), {
        "clear": ("清楚", "clear", "清晰", "明确", *YES),
        "partial": ("部分清楚", "partial", "partly clear", "基本清楚", "部分明确"),
        "unclear": ("不清楚", "unclear", "不明确", "模糊", *NO)}),
    Column("business_condition", CODE, "客户的业务状况", "Customer's business condition",
           ("客户的业务状况", "客户得业务状况", "业务状况", "business condition"), {
        "strong": ("强劲", "strong", "良好", "growth", "growing", "增长"),
        "stable": ("稳定", "stable", "平稳", "一般"),
        "weak": ("疲弱", "weak", "较差", "decline", "declining", "下滑")}),
    Column("approval_status", CODE, "客户的项目立项业务状况", "Project approval",
           ("客户的项目立项业务状况", "客户得项目立项业务状况", "项目立项业务状况", "立项业务状况", "立项状况", "立项状态", "立项",
            "approval status", "approval"), {
        "approved": ("已立项", "approved", "健全", "已批复", "已审批", "立项完成", *YES),
        "in_progress": ("立项中", "in_progress", "in progress", "审批中", "pending"),
        "not_started": ("未立项", "not_started", "not started", "未启动", "none", *NO)}),
    Column("budget_status", CODE, "项目的预算", "Budget",
           ("项目的预算", "项目得预算", "预算", "预算状况", "budget status", "budget"), {
        "allocated": ("有", "allocated", "有预算", "已落实", "已批", "预算已批", "预算已落实", *YES),
        "partial": ("部分", "partial", "部分预算", "部分落实"),
        "none": ("无", "none", "没有", "无预算", *NO)}),
    Column("urgency", CODE, "项目对客户的紧迫性", "Urgency",
           ("项目对客户的紧迫性", "项目对客户得紧迫性", "紧迫性", "紧急程度", "urgency"), {
        "high": ("紧迫", "high", "清楚", "紧急", "急", "urgent"),
        "medium": ("一般", "medium", "中"),
        "low": ("不急", "low", "不紧迫", "低")}),
    Column("future_revenue", LEVEL_OR_AMOUNT, "我们的未来销售收入", "Future revenue",
           ("我们的未来销售收入", "我们得未来销售收入", "未来销售收入", "future revenue"), LEVEL),
    Column("margin", PERCENT, "我们的利润", "Margin",
           ("我们的利润", "我们得利润", "利润", "毛利率", "利润率", "margin", "gross margin", "profit")),
    Column("risk", CODE, "我们的风险", "Risk", ("我们的风险", "我们得风险", "风险", "risk"),
           {"low": LEVEL["low"], "medium": LEVEL["medium"], "high": LEVEL["high"]}),
    Column("strategic_value", CODE, "对我们扩充市场的战略价值", "Strategic value",
           ("对我们扩充市场的战略价值", "对我们扩充市场得战略价值", "战略价值", "strategic value"), LEVEL),
    Column("competitors", COUNT_OR_NAMES, "竞争对手", "Competitors", ("竞争对手", "竞争者", "主要竞争对手", "竞争对手名称", "竞品",
                                                                        "competitors", "competition", "competitor",
                                                                        "main competitors")),
    Column("owner", TEXT, "销售经理", "Owner", ("销售经理", "负责人", "客户经理", "销售负责人", "商机负责人", "商机所有人",
                                                     "所有人", "销售人员", "业务员", "owner", "sales rep", "account manager",
                                                     "opportunity owner", "deal owner", "salesperson")),
    Column("notes", TEXT, "备注", "Notes", ("备注", "说明", "notes", "remarks", "comments", "description")),
    Column("contacts", TEXT, "人脉资源", "Contacts", ("人脉资源", "人脉", "contacts", "relationships")),
    Column("outcome", CODE, "结果", "Outcome", ("结果", "成交结果", "商机状态", "机会状态", "成交状态", "outcome", "result",
                                                 "status"), {
        "won": ("赢单", "won", "成交", "赢", "win", "closed won"),
        "lost": ("丢单", "lost", "输单", "输", "loss", "closed lost"),
        # a CRM's status column (商机状态, Status) lists the deals still running too: those are what kam scores
        "open": ("进行中", "open", "跟进中", "在跟进", "未关闭", "in progress", "ongoing", "active")}),
)

TREND = {"up": ("上升", "up", "rising", "improving", "↑"), "flat": ("持平", "flat", "不变", "stable", "平稳", "→"),
         "down": ("下降", "down", "falling", "declining", "worsening", "↓")}

# 关键人物信息表 (key person sheet), 角色表 (role table) and 客户全貌 (account overview), in Chinese and English.
# The seed's scrape writes 得 for 的 in many headers ("对我们得支持度"); both spellings are accepted.
STAKEHOLDER_COLUMNS: tuple[Column, ...] = (
    Column("opportunity_id", ID, "编号", "Opportunity ID",
           ("编号", "项目编号", "机会编号", "商机编号", "opportunity id", "opportunityid", "opp id", "deal id")),
    Column("name", TEXT, "姓名", "Name", ("姓名", "name", "full name", "contact", "contact name"), personal=True),
    Column("title", TEXT, "职务", "Title", ("职务", "职位", "机构&职务", "机构及职务", "title", "job title", "position")),
    Column("department", TEXT, "所在处室", "Department",
           ("所在处室", "所在处(科)室", "所在处（科）室", "处室", "部门", "科室", "department", "division", "unit")),
    Column("role", CODE, "角色", "Role", ("角色", "目前该人的角色", "目前该人得角色", "buying role", "role"), {
        "decision_maker": ("关键决策者", "decision_maker", "decision maker", "决策者", "关键决策人", "决策人",
                           "economic buyer"),
        "technical_gatekeeper": ("技术把关者", "technical_gatekeeper", "technical gatekeeper", "technical buyer",
                                 "技术把关人"),
        "business_gatekeeper": ("业务把关者", "business_gatekeeper", "business gatekeeper", "user buyer",
                                "业务把关人", "用户"),
        "coach": ("教练", "coach", "champion", "内线", "线人"),
        "project_lead": ("项目牵头人", "project_lead", "project lead", "牵头人", "项目负责人")}),
    Column("style", CODE, "性格", "Style", ("性格", "个性", "性格类型", "style", "personality", "social style"), {
        "tiger": ("老虎", "tiger"), "peacock": ("孔雀", "peacock"), "owl": ("猫头鹰", "owl"),
        "koala": ("无尾熊", "koala", "考拉")}),
    Column("temperament", CODE, "气质", "Temperament", ("气质", "temperament"), {
        "impetuous": ("急躁饶舌", "impetuous", "急躁", "饶舌", "impatient", "talkative", "restless"),
        "steady": ("稳重寡言", "steady", "稳重", "寡言", "calm", "reserved", "quiet")}),
    Column("thinking", CODE, "思想", "Thinking", ("思想", "thinking", "mindset", "outlook"), {
        "radical": ("激进", "radical", "bold", "progressive", "aggressive", "risk-taking"),
        "conservative": ("稳健保守", "conservative", "稳健", "保守", "cautious", "risk-averse")}),
    Column("eloquence", CODE, "口才", "Eloquence", ("口才", "eloquence", "speaking", "communication"), {
        "articulate": ("能说", "articulate", "能说会道", "善谈", "健谈", "eloquent", "persuasive"),
        "average": ("普通", "average", "一般", "ordinary"),
        "inarticulate": ("口拙", "inarticulate", "不善言辞", "木讷", "reticent", "poor")}),
    Column("stance", CODE, "立场", "Stance",
           ("立场", "对我们的支持度", "对我们得支持度", "支持度", "态度", "stance", "support", "attitude", "position on us"), {
        "support": ("支持", "support", "supporter", "支持者", "支持我方", "倾向我方", "强烈支持", "高", "positive",
                    "supportive", "for us", "pro"),
        "neutral": ("中立", "neutral", "中", "一般", "观望", "未表态", "undecided", "indifferent"),
        "oppose": ("反对", "oppose", "opponent", "反对者", "倾向对手", "支持对手", "低", "negative", "against",
                   "blocker", "detractor", "opposed")}),
    Column("influence", CODE, "项目影响力", "Influence", ("项目影响力", "影响力", "influence", "power"), LEVEL),
    Column("influenced_by", TEXT, "受谁影响", "Influenced by", ("受谁影响", "influenced by", "influenced_by",
                                                              "reports to")),
    Column("influences", TEXT, "能影响谁", "Influences", ("能影响谁", "influences", "can influence")),
    Column("closeness_trend", CODE, "亲近度关系", "Closeness trend",
           ("亲近度", "亲近度关系", "亲进度关系", "亲进度", "closeness", "closeness trend"), TREND),
    Column("trust_trend", CODE, "信任度关系", "Trust trend", ("信任度", "信任度关系", "trust", "trust trend"), TREND),
    Column("coach_potential", CODE, "是否可能成为我们的教练", "Could become our coach",
           ("是否可能成为我们的教练", "是否有可能成为我们的教练", "是否有可能成为我们得教练", "是否可能成为教练",
            "可能成为教练", "potential coach", "coach potential", "could be coach"), {
        "yes": (*YES, "可能", "有可能"), "no": (*NO, "不可能")}),
    Column("focus", TEXT, "关注焦点", "Focus", ("关注焦点", "关注点", "focus", "key concerns", "concerns")),
    Column("introducer", TEXT, "介绍人", "Introduced by", ("介绍人", "introduced by", "introducer", "referrer"),
           personal=True),
    Column("opinions", TEXT, "其他人对该人的评价", "What others say",
           ("其他人对该人的评价", "其她人对该人得评价", "他人评价", "what others say"), personal=True),
    Column("birthday", TEXT, "生日", "Birthday", ("生日", "birthday", "date of birth"), personal=True),
    Column("hometown", TEXT, "出生地", "Hometown", ("出生地", "籍贯", "hometown", "place of birth"), personal=True),
    Column("family", TEXT, "配偶及子女状况", "Family", ("配偶及子女状况", "家庭", "家庭情况", "family"), personal=True),
    Column("hobbies", TEXT, "兴趣", "Hobbies", ("兴趣", "爱好", "兴趣爱好", "私人喜好", "hobbies", "interests"), personal=True),
    Column("education", TEXT, "学历", "Education", ("学历", "education"), personal=True),
    Column("background", TEXT, "出身", "Background", ("出身", "background"), personal=True),
    Column("phone", TEXT, "电话", "Phone", ("电话", "手机", "phone", "mobile"), personal=True),
    Column("email", TEXT, "邮箱", "E-mail", ("邮箱", "email", "e-mail"), personal=True),
    Column("age", TEXT, "年龄", "Age", ("年龄", "age"), personal=True),
    Column("gender", TEXT, "性别", "Gender", ("性别", "gender", "sex"), personal=True),
)

OPPORTUNITY = {c.name: c for c in OPPORTUNITY_COLUMNS}
STAKEHOLDER = {c.name: c for c in STAKEHOLDER_COLUMNS}
PERSONAL_FIELDS = frozenset(c.name for c in STAKEHOLDER_COLUMNS if c.personal)

# columns the normaliser adds beside the canonical ones
DERIVED_COLUMNS = {
    "deal_size_base": "deal size converted to the base currency ([currency] in kam.toml), for comparing deals",
    "purchase_date_precision": "day, month, quarter or year: how precise purchase_date was in the input",
    "future_revenue_amount": "future revenue when given as an amount instead of a level",
    "competitor_count": "number of competitors (given as a count, or counted from the names)",
    "value_flags": "values accepted with a note, as `column: note; …` (面议, a range's midpoint, an Excel "
                   "serial date, a day/month order inferred); empty when nothing was flagged",
}

# the input column each derived column comes from (what to name when an export lacks the derived one)
DERIVED_FROM = {"deal_size_base": "deal_size", "purchase_date_precision": "purchase_date",
                "future_revenue_amount": "future_revenue", "competitor_count": "competitors"}

MISSING_TOKENS = ("", "-", "--", "—", "－", "n/a", "na", "#n/a", "null", "none given", "unknown", "未知", "不详", "?", "？")
NONE_TOKENS = ("无", "没有", "none", "no", "0")  # "no competitors": a count of 0, not one competitor named "无"
