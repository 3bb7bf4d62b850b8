// The console's words in Chinese (the default) and English. Statuses, actions and
// roles carry both, as the API's own labels do; a person switches with the button at
// the top, and the choice (a preference, not a secret) is kept in localStorage.

const WORDS = {
  title: ["监督指挥", "Command centre"],
  tab_cases: ["案卷", "Cases"],
  tab_patrol: ["巡查审核", "Patrol review"],
  tab_hotline: ["热线受理", "Hotline"],
  tab_assess: ["考核评价", "Assessment"],
  period: ["期间", "Period"],
  level: ["单位", "Units"],
  within: ["范围", "Within"],
  level_district: ["区", "Districts"],
  level_street: ["街道", "Streets"],
  level_community: ["社区", "Communities"],
  level_team: ["专业部门", "Teams"],
  level_handler: ["处置人员", "Handlers"],
  level_reporter: ["信息监督员", "Information supervisors"],
  level_dispatcher: ["派遣员", "Dispatchers"],
  download_csv: ["下载 CSV", "Download CSV"],
  download_xlsx: ["下载 Excel", "Download Excel"],
  publish: ["发布本期", "Publish this period"],
  published: ["已发布", "Published"],
  show_published: ["已发布报告", "Published report"],
  differences: ["发布后变化", "Changed since publishing"],
  unchanged: ["发布后无变化", "Unchanged since publishing"],
  assess_empty: ["本期无案卷", "No cases in this period"],
  col_rank: ["名次", "Rank"],
  col_unit: ["单位", "Unit"],
  col_score: ["得分", "Score"],
  col_grade: ["等级", "Grade"],
  col_cases: ["案卷数", "Cases"],
  flag_penalty: ["末位", "Last place"],
  flag_reward: ["前三", "Top three"],
  unranked_too_few_cases: ["案卷过少", "Too few cases"],
  unranked_no_score: ["无得分", "No score"],
  logout: ["退出", "Log out"],
  login_title: ["登录监督指挥平台", "Log in to the command centre"],
  user: ["账号", "Account"],
  password: ["密码", "Password"],
  login: ["登录", "Log in"],
  col_summary: ["摘要", "Summary"],
  col_status: ["状态", "Status"],
  col_due: ["时限", "Due"],
  col_worker: ["巡查员", "Worker"],
  col_checkins: ["打卡", "Check-ins"],
  col_distance: ["里程", "Distance"],
  col_verdict: ["审核", "Review"],
  day: ["日期", "Day"],
  unit: ["单元编码", "Unit code"],
  show: ["查看", "Show"],
  category: ["类别", "Category"],
  grid_code: ["网格编码", "Grid code"],
  pick_on_map: ["或在地图上点选位置", "or pick the place on the map"],
  address: ["地址", "Address"],
  description: ["描述", "Description"],
  caller_name: ["来电人", "Caller"],
  caller_phone: ["电话", "Phone"],
  ticket: ["工单号", "Ticket"],
  take_call: ["立单", "Take the call"],
  hotline_title: ["受理来电", "Take a call"],
  q_reported: ["待受理", "To accept"],
  q_accepted: ["待立案", "To register"],
  q_registered: ["待派遣", "To dispatch"],
  q_dispatched: ["处置中", "Being handled"],
  q_handled: ["待核查", "To verify"],
  q_verified: ["待结案", "To close"],
  q_overdue: ["超期", "Overdue"],
  q_reply: ["待回访", "To reply"],
  none: ["暂无", "None"],
  loading: ["加载中…", "Loading…"],
  more: ["条以上", "or more"],
  count: ["条", "cases"],
  overdue: ["超期", "overdue"],
  timeline: ["办理过程", "Timeline"],
  photos: ["照片", "Photos"],
  actions: ["可办理", "Actions"],
  no_actions: ["当前无可办理的操作", "Nothing you may do now"],
  note: ["意见", "Note"],
  team: ["处置部门", "Team"],
  assignee: ["处置人", "Assignee"],
  anyone: ["（部门内任一人）", "(anyone in the team)"],
  extra: ["延期时长", "Extension"],
  channel: ["回访方式", "Channel"],
  satisfied: ["满意", "Satisfied"],
  approved: ["同意", "Approve"],
  duplicate_of: ["重复于案卷", "Duplicate of case"],
  submit: ["提交", "Submit"],
  cancel: ["取消", "Cancel"],
  back: ["返回列表", "Back to the list"],
  ignored: ["未生效", "ignored"],
  reported_at: ["上报时间", "Reported"],
  source: ["来源", "Source"],
  grid: ["网格", "Grid"],
  zoom_in: ["放大地图以显示单元网格", "Zoom in to see the unit grids"],
  grids_shown: ["单元网格", "unit grids"],
  too_many_grids: ["范围内网格过多，请放大", "Too many grids here: zoom in"],
  no_grids: ["服务器未导入网格", "The server has no grids"],
  approve: ["合格", "Approve"],
  reject: ["不合格", "Reject"],
  reason: ["理由", "Reason"],
  reason_needed: ["不合格需填写理由", "A rejection needs a reason"],
  // Login refusals by the API's error code; other codes show the server's message.
  error_bad_credentials: ["账号或密码错误", "Wrong account or password"],
  error_too_many_attempts: ["尝试次数过多，请稍后再试", "Too many attempts: try again later"],
  error_account_disabled: ["账号已停用", "This account is disabled"],
  reviews: ["审核记录", "Reviews"],
  anomalies: ["异常", "Anomalies"],
  missed: ["未巡网格", "Missed grids"],
  checkins: ["打卡", "Check-ins"],
  no_logs: ["当天无巡查记录", "No patrol logs that day"],
  walked: ["已巡", "walked"],
  created: ["已立单", "Case created"],
  pick_point: ["已选位置", "Picked"],
  log_saved: ["审核已提交", "Review saved"],
  failed: ["失败", "Failed"],
  metres: ["米", "m"],
  possible_duplicates: ["可能重复", "Possible duplicates"],
  void_as_duplicate: ["作为重复作废", "Void as its duplicate"],
};

const STATUS = {
  reported: ["待受理", "Waiting to be accepted"],
  accepted: ["待立案", "Waiting to be registered"],
  registered: ["待派遣", "Waiting to be dispatched"],
  dispatched: ["待处置", "Waiting to be handled"],
  handled: ["待核查", "Waiting for verification"],
  verified: ["待结案", "Waiting to be closed"],
  closed: ["已结案", "Closed"],
  voided: ["已作废", "Voided"],
  deferred: ["已挂账", "Deferred"],
};

const ACTIONS = {
  report: ["上报", "Report"],
  accept: ["受理", "Accept"],
  register: ["立案", "Register"],
  dispatch: ["派遣", "Dispatch"],
  handle: ["处置", "Handle"],
  verify: ["核查", "Verify"],
  rework: ["返工", "Rework"],
  close: ["结案", "Close"],
  return: ["退回", "Return"],
  request_extension: ["申请延期", "Request an extension"],
  decide_extension: ["审批延期", "Decide the extension"],
  request_defer: ["申请挂账", "Request deferral"],
  decide_defer: ["审批挂账", "Decide the deferral"],
  void: ["作废", "Void"],
  escalate: ["逐级上报", "Escalate"],
  reopen: ["重新打开", "Reopen"],
  comment: ["备注", "Comment"],
  reply: ["回访", "Reply to the caller"],
};

const SOURCES = {
  patrol: ["巡查上报", "patrol"],
  hotline: ["12319热线", "hotline"],
  citizen: ["市民", "citizen"],
  handover: ["转办", "handover"],
  video: ["视频", "video"],
};

let current = localStorage.getItem("wangge.lang") === "en" ? 1 : 0;
const listeners = [];

export function lang() {
  return current === 1 ? "en" : "zh";
}

export function t(key) {
  const pair = WORDS[key];
  return pair ? pair[current] : key;
}

function pick(table, key) {
  const pair = table[key];
  return pair ? pair[current] : key || "";
}

export const statusLabel = (s) => pick(STATUS, s);
export const actionLabel = (a) => pick(ACTIONS, a);
export const sourceLabel = (s) => pick(SOURCES, s);

/// A bilingual label from the server ("上水井盖 Water supply manhole cover"): the
/// Chinese part or the English one.
export function bilingual(text) {
  if (!text) return "";
  const at = text.search(/ [A-Za-z(]/);
  if (at < 0) return text;
  return current === 1 ? text.slice(at + 1) : text.slice(0, at);
}

/// Fills every `data-t` element under `root` with its word.
export function translate(root = document) {
  document.documentElement.lang = current === 1 ? "en" : "zh-CN";
  for (const el of root.querySelectorAll("[data-t]")) {
    el.textContent = t(el.dataset.t);
  }
}

export function toggle() {
  current = 1 - current;
  localStorage.setItem("wangge.lang", lang());
  translate();
  for (const f of listeners) f();
}

export function onChange(f) {
  listeners.push(f);
}

/// A time in Beijing time, for people in Zhengzhou.
export function time(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toLocaleString(current === 1 ? "en-GB" : "zh-CN", {
    timeZone: "Asia/Shanghai",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}
