//! Sync protocol benchmarks: a field worker's phone that reconnects after a day
//! offline, and a new phone's bootstrap, against plain per-document Automerge sync
//! (the automerge-repo way) on exactly the same documents and edits.
//!
//! The world: 5,000 cases in the grids of one community (the phone's scope) and
//! 1,000 in the neighbouring community, each built through the public API only: a
//! report (by a field worker or the hotline, with varied addresses and descriptions,
//! some with photos) and then 0–7 workflow actions, each taken by the role and scope
//! that may take it from that person's own 16-byte device, with comments here and
//! there; UUID-v7-like ids, splitmix64 throughout, so every run builds the same world.
//! The server stores them as saves; the phone (a sanitation worker of the community)
//! bootstraps through the protocol (and, for the bytes only, once more from a server
//! fed every case as its changes, which its storage compacts on arrival). Then, while
//! it is offline, other people act on 200 of its cases (the next workflow action, or a
//! comment) and on 100 cases outside its scope, stored on the server; the phone's user
//! comments on 50 other cases. The phone reconnects.
//!
//! The baseline keeps an `automerge::sync::State` per document on each side, persists
//! it across the offline period with `State::encode`/`State::decode`, and on
//! reconnect the phone generates a message for every document it holds (as
//! automerge-repo announces every document); each message costs its encoded bytes
//! plus its document id (the least any envelope must carry). A second variant keeps
//! the server's states in memory (the server did not restart).
//!
//! The once-off numbers are printed and written to `bench-data/sync/results.txt` under
//! `$CARGO_TARGET_DIR` (default `target/`), with what loading and saving one case
//! costs; criterion then times one reconnect round (prepare, handle, receive), the
//! baseline's whole reconnect (both sides, documents in memory) and a whole bootstrap.
//! Building the world takes about 40 s. Run with
//! `cargo bench -p wangge-sync-core --bench sync`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use automerge::sync::{Message, State, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, LoadOptions, VerificationMode};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{
    Action, CaseDocument, CaseView, NewCase, Photo, PhotoRole, Position, Source, Status,
    WorkflowContext,
};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::role::{Actor, Role};
use wangge_sync_core::sync::device::DeviceSession;
use wangge_sync_core::sync::memory::{MemoryDevice, MemoryServer};
use wangge_sync_core::sync::message::{Limits, Request};
use wangge_sync_core::sync::server::{DocWrite, ServerSession};
use wangge_sync_core::sync::{DocKind, DocMeta, Rules, UserScope, load_chunks, sorted_heads};

/// Cases in the phone's scope.
const CASES: usize = 5_000;
/// Cases of the neighbouring community, outside the phone's scope.
const OTHER_CASES: usize = 1_000;
/// Cases in scope that other people change while the phone is offline.
const SERVER_EDITS: usize = 200;
/// Cases the phone's user comments on while offline.
const PHONE_EDITS: usize = 50;
/// Cases outside the scope that change meanwhile.
const OTHER_EDITS: usize = 100;

const COMMUNITY: &str = "410102001001";
const OTHER_COMMUNITY: &str = "410102001002";
const STREET: &str = "410102001";
const DISTRICT: &str = "410102";

/// The goals.
const RECONNECT_RATIO_GOAL: f64 = 1.2;
const RECONNECT_PER_DOC_GOAL: usize = 100;
const BOOTSTRAP_RATIO_GOAL: f64 = 1.1;

#[path = "support/rng.rs"]
mod rng;

use rng::{Rng, results_dir};

/// Tuesday 2026-08-25 09:00 Beijing time plus `minutes`: the world's cases span the
/// 90 days after it; the offline day is the 91st.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 25, 1, 0, 0)
        .single()
        .expect("a valid time")
        + TimeDelta::minutes(minutes)
}

const OFFLINE_DAY: i64 = 91 * 24 * 60;

/// One person, with a random 16-byte device id of their own.
fn actor(rng: &mut Rng, user: &str, role: Role, team: Option<&str>, scope: &str) -> Actor {
    Actor {
        user: user.to_owned(),
        role,
        team: team.map(|t| TeamId::new(t).expect("team id")),
        scope: scope.parse().expect("grid scope"),
        device: rng.hex(32),
    }
}

/// The people of one community: who reports, who handles each field team's work,
/// who verifies.
struct Community {
    code: &'static str,
    reporters: Vec<Actor>,
    supervisor: Actor,
    officer: Actor,
    sanitation: Actor,
    maintenance: Actor,
}

/// Everyone: the phone's user, the two communities' field workers, the street's
/// command centre, the district's department handlers, the hotline.
struct People {
    phone: Actor,
    home: Community,
    other: Community,
    acceptor: Actor,
    shift_lead: Actor,
    dispatcher: Actor,
    district_supervisor: Actor,
    hotline: Actor,
    /// A department handler per team that has no field team here.
    departments: BTreeMap<String, Actor>,
}

fn community(rng: &mut Rng, code: &'static str, n: u32) -> Community {
    let user = |k: u32| format!("zz{:02}{:05}", k, n * 1000 + k);
    let officer = actor(
        rng,
        &user(1),
        Role::EnforcementOfficer,
        Some("enforcement"),
        code,
    );
    let sanitation = actor(
        rng,
        &user(3),
        Role::SanitationWorker,
        Some("sanitation"),
        code,
    );
    let maintenance = actor(
        rng,
        &user(4),
        Role::MunicipalMaintenance,
        Some("municipal_maintenance"),
        code,
    );
    let supervisor = actor(rng, &user(5), Role::InformationSupervisor, None, code);
    let assistant = actor(rng, &user(6), Role::Assistant, Some("enforcement"), code);
    let leader = actor(rng, &user(7), Role::GridLeader, None, code);
    Community {
        code,
        reporters: vec![
            supervisor.clone(),
            supervisor.clone(),
            officer.clone(),
            assistant,
            leader,
            sanitation.clone(),
        ],
        supervisor,
        officer,
        sanitation,
        maintenance,
    }
}

fn people(rng: &mut Rng) -> People {
    let phone = actor(
        rng,
        "zz0300417",
        Role::SanitationWorker,
        Some("sanitation"),
        COMMUNITY,
    );
    let home = community(rng, COMMUNITY, 1);
    let other = community(rng, OTHER_COMMUNITY, 2);
    let mut departments = BTreeMap::new();
    for (k, team) in Catalog::builtin().teams().iter().enumerate() {
        let id = team.id.as_str();
        if !matches!(id, "enforcement" | "sanitation" | "municipal_maintenance") {
            let user = format!("zd{:07}", 100 + k);
            departments.insert(
                id.to_owned(),
                actor(rng, &user, Role::DepartmentHandler, Some(id), DISTRICT),
            );
        }
    }
    People {
        phone,
        home,
        other,
        acceptor: actor(rng, "zz0900012", Role::Acceptor, None, STREET),
        shift_lead: actor(rng, "zz0900003", Role::ShiftLead, None, STREET),
        dispatcher: actor(rng, "zz0900027", Role::Dispatcher, None, STREET),
        district_supervisor: actor(rng, "zz0010002", Role::DistrictSupervisor, None, DISTRICT),
        hotline: actor(rng, "zz1231905", Role::HotlineOperator, None, "*"),
        departments,
    }
}

impl People {
    /// Who handles the work of `team` in `community`.
    fn handler<'a>(&'a self, community: &'a Community, team: &TeamId) -> &'a Actor {
        match team.as_str() {
            "enforcement" => &community.officer,
            "sanitation" => &community.sanitation,
            "municipal_maintenance" => &community.maintenance,
            other => self
                .departments
                .get(other)
                .unwrap_or_else(|| panic!("no handler for team {other}")),
        }
    }
}

const ROADS: &[&str] = &[
    "金水路",
    "花园路",
    "经三路",
    "纬五路",
    "农业路",
    "红专路",
    "文化路",
    "丰产路",
    "东风路",
    "黄河路",
    "政七街",
    "健康路",
    "东明路",
    "城东路",
    "优胜南路",
    "南阳路",
    "北林路",
    "姚砦路",
    "博颂路",
    "索凌路",
    "未来路",
    "纬一路",
    "经八路",
    "群办路",
];

const SPOTS: &[&str] = &[
    "交叉口东北角",
    "交叉口西南角",
    "北侧人行道",
    "南侧绿化带内",
    "公交站台旁",
    "小区东门口",
    "菜市场西门",
    "学校南门外",
    "中段路西",
    "立交桥下",
    "便民服务点旁",
    "加油站对面",
    "医院北门",
    "银行门口",
    "地铁站B口",
    "停车场入口",
];

const DETAILS: &[&str] = &[
    "影响行人通行",
    "已持续三天",
    "市民多次反映",
    "夜间尤为明显",
    "存在安全隐患",
    "雨后积水严重",
    "气味较大，周边居民投诉",
    "占用盲道",
    "机动车无法通行",
    "周边商户反映强烈",
    "疑似施工单位遗留",
    "早高峰时段拥堵",
    "老人孩子经过时需绕行",
    "附近有幼儿园",
    "已有行人摔倒",
    "监控画面可见",
    "与上月同一位置重复发生",
    "建议尽快处置",
    "现场无人看管",
    "晚间有人焚烧",
];

const NOTES: &[&str] = &[
    "已到现场核实",
    "正在处理",
    "已联系责任单位",
    "已清理完毕，恢复原状",
    "现场已设置警示标志",
    "需协调车辆，预计明日完成",
    "已拍照留存",
    "已通知物业配合",
    "市民来电催办",
    "请尽快处置并反馈",
    "已安排人员夜间作业",
    "材料已备齐，开始施工",
    "经核实情况属实",
    "处置结果符合要求",
    "已回访市民，表示满意",
    "责任单位称人手不足",
    "周边仍有少量残留",
    "已与店主沟通，承诺整改",
];

fn address(rng: &mut Rng) -> String {
    let road = rng.pick(ROADS);
    if rng.chance(50) {
        let spot = rng.pick(SPOTS);
        format!("{road}{}号{spot}", 1 + rng.below(300))
    } else {
        let cross = rng.pick(ROADS);
        let spot = rng.pick(SPOTS);
        format!("{road}与{cross}{spot}")
    }
}

fn description(rng: &mut Rng, what: &str) -> String {
    let spot = rng.pick(SPOTS);
    let measure = match rng.below(4) {
        0 => format!("约{}平方米", 1 + rng.below(80)),
        1 => format!("长约{}米", 2 + rng.below(150)),
        2 => format!("共{}处", 1 + rng.below(9)),
        _ => format!("约{}车", 1 + rng.below(5)),
    };
    let mut text = format!("{spot}{what}，{measure}");
    for _ in 0..1 + rng.below(4) {
        text.push('，');
        let detail: &&str = rng.pick(DETAILS);
        text.push_str(detail);
    }
    if rng.chance(30) {
        write!(text, "，最早于{}日前发现", 1 + rng.below(14)).expect("write to a String");
    }
    text.push('。');
    text
}

fn note(rng: &mut Rng) -> String {
    let mut text = (*rng.pick(NOTES)).to_owned();
    match rng.below(4) {
        0 => write!(text, "，预计{}点前完成", 8 + rng.below(12)),
        1 => write!(text, "（{}）", rng.pick(ROADS)),
        2 => write!(text, "，现场{}人", 1 + rng.below(6)),
        _ => Ok(()),
    }
    .expect("write to a String");
    text
}

fn photo(rng: &mut Rng, by: &Actor, role: PhotoRole, minutes: i64, near: Position) -> Photo {
    Photo {
        hash: rng.hex(64),
        role,
        taken_at: Some(at(minutes) - TimeDelta::seconds(20 + rng.below(300) as i64)),
        position: Some(Position {
            lon: near.lon + (rng.below(200) as f64 - 100.0) * 1e-6,
            lat: near.lat + (rng.below(200) as f64 - 100.0) * 1e-6,
            accuracy_m: Some(3.0 + rng.below(12) as f64),
        }),
        added_by: by.user.clone(),
        added_at: at(minutes),
    }
}

/// Takes `action` by `who` at `minutes`, with a fresh entry id.
fn act(
    rng: &mut Rng,
    context: &WorkflowContext<'_>,
    case: &mut CaseDocument,
    who: &Actor,
    action: Action,
    minutes: i64,
    note: Option<String>,
) {
    let id = rng.uuid_v7(at(minutes));
    let name = action.name();
    case.act(context, who, &id, action, at(minutes), note)
        .unwrap_or_else(|e| panic!("{name:?} by {} ({}): {e}", who.user, who.role));
}

fn dispatch(team: &TeamId, assignee: Option<&Actor>) -> Action {
    Action::Dispatch {
        team: team.clone(),
        assignee: assignee.map(|a| a.user.clone()),
    }
}

/// A case of `community` reported some time in the 90 days, taken through 0–7
/// workflow steps (most cases of a community's history are closed).
fn build_case(
    rng: &mut Rng,
    context: &WorkflowContext<'_>,
    people: &People,
    community: &Community,
    categories: &[(String, String, TeamId)],
) -> (String, CaseDocument) {
    let mut minutes = rng.below(90) as i64 * 1440 + rng.below(600) as i64;
    let (code, what, team) = rng.pick(categories).clone();
    let hotline = rng.chance(15);
    let reporter = if hotline {
        &people.hotline
    } else {
        rng.pick(&community.reporters)
    };
    let grid = format!("{}{:03}", community.code, 1 + rng.below(60));
    let location = Position {
        lon: 113.66 + rng.below(20_000) as f64 * 1e-6,
        lat: 34.75 + rng.below(20_000) as f64 * 1e-6,
        accuracy_m: Some(3.0 + rng.below(20) as f64),
    };
    let id = rng.uuid_v7(at(minutes));
    let new = NewCase {
        id: id.clone(),
        category: code.parse().expect("category"),
        location,
        grid: Some(grid.parse().expect("grid code")),
        address: address(rng),
        description: description(rng, &what),
        source: if hotline {
            Source::Hotline
        } else {
            Source::Patrol
        },
        source_ref: hotline.then(|| format!("12319-2026{:08}", rng.below(100_000_000))),
        caller: hotline.then(|| wangge_sync_core::case::Caller {
            name: Some(format!(
                "{}先生",
                rng.pick(&["王", "李", "张", "刘", "陈", "杨"])
            )),
            phone: Some(format!("13{:09}", rng.below(1_000_000_000))),
            wants_reply: rng.chance(60),
        }),
    };
    let entry = rng.uuid_v7(at(minutes));
    let mut case =
        CaseDocument::create(&new, reporter, &entry, at(minutes)).expect("create the case");
    if !hotline && rng.chance(60) {
        for _ in 0..1 + rng.below(2) {
            let p = photo(rng, reporter, PhotoRole::Before, minutes, location);
            case.add_photo(reporter, &p).expect("add a photo");
        }
    }
    let depth = *rng.pick(&[0, 1, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6]);
    let handler = people.handler(community, &team);
    let step = |rng: &mut Rng, minutes: &mut i64| {
        *minutes += 5 + rng.below(240) as i64;
        *minutes
    };
    if depth >= 1 {
        let m = step(rng, &mut minutes);
        act(
            rng,
            context,
            &mut case,
            &people.acceptor,
            Action::Accept,
            m,
            None,
        );
    }
    if depth >= 2 {
        let m = step(rng, &mut minutes);
        act(
            rng,
            context,
            &mut case,
            &people.shift_lead,
            Action::Register,
            m,
            None,
        );
    }
    if depth >= 3 {
        let m = step(rng, &mut minutes);
        // The phone's user works in its own community only.
        let assignee = (team.as_str() == "sanitation" && rng.chance(50)).then_some(
            if rng.chance(30) && community.code == COMMUNITY {
                &people.phone
            } else {
                &community.sanitation
            },
        );
        act(
            rng,
            context,
            &mut case,
            &people.dispatcher,
            dispatch(&team, assignee),
            m,
            None,
        );
        if rng.chance(30) {
            let m = step(rng, &mut minutes);
            let n = Some(note(rng));
            act(rng, context, &mut case, handler, Action::Comment, m, n);
        }
    }
    if depth >= 4 {
        let m = step(rng, &mut minutes);
        let n = Some(note(rng));
        act(rng, context, &mut case, handler, Action::Handle, m, n);
        if rng.chance(50) {
            let p = photo(rng, handler, PhotoRole::After, m, location);
            case.add_photo(handler, &p).expect("add a photo");
        }
        if rng.chance(10) {
            // A rework round.
            let m = step(rng, &mut minutes);
            let n = Some(note(rng));
            act(
                rng,
                context,
                &mut case,
                &community.supervisor,
                Action::Rework,
                m,
                n,
            );
            let m = step(rng, &mut minutes);
            let n = Some(note(rng));
            act(rng, context, &mut case, handler, Action::Handle, m, n);
        }
    }
    if depth >= 5 {
        let m = step(rng, &mut minutes);
        act(
            rng,
            context,
            &mut case,
            &community.supervisor,
            Action::Verify,
            m,
            None,
        );
    }
    if depth >= 6 {
        let m = step(rng, &mut minutes);
        act(
            rng,
            context,
            &mut case,
            &people.shift_lead,
            Action::Close,
            m,
            None,
        );
        if hotline && rng.chance(50) {
            let m = step(rng, &mut minutes);
            let n = Some(note(rng));
            act(
                rng,
                context,
                &mut case,
                &people.hotline,
                Action::Comment,
                m,
                n,
            );
        }
    }
    (id, case)
}

/// What someone other than the phone's user does next on a case: the next workflow
/// step (half the time, where there is one), or a comment.
fn next_step<'a>(
    rng: &mut Rng,
    view: &CaseView,
    people: &'a People,
    community: &'a Community,
) -> (&'a Actor, Action, Option<String>) {
    let step = rng.chance(50);
    let comment = |rng: &mut Rng, who: &'a Actor| (who, Action::Comment, Some(note(rng)));
    match view.status {
        Some(Status::Reported) if step => (&people.acceptor, Action::Accept, None),
        Some(Status::Accepted) if step => (&people.shift_lead, Action::Register, None),
        Some(Status::Registered) if step => {
            let category = Catalog::builtin()
                .categories()
                .find(|c| Some(c.code) == view.record.category)
                .expect("the case's category");
            (&people.dispatcher, dispatch(&category.team, None), None)
        }
        Some(Status::Dispatched) if step => {
            let team = &view.assignment.as_ref().expect("assigned").team;
            let n = Some(note(&mut *rng));
            (people.handler(community, team), Action::Handle, n)
        }
        Some(Status::Handled) if step => (&community.supervisor, Action::Verify, None),
        Some(Status::Verified) if step => (&people.shift_lead, Action::Close, None),
        _ => {
            let who = *rng.pick(&[
                &people.dispatcher,
                &people.hotline,
                &people.district_supervisor,
                &community.supervisor,
            ]);
            comment(rng, who)
        }
    }
}

/// One document as both sides start with it.
struct Doc {
    id: String,
    case: CaseDocument,
}

/// The documents of one sync run's worth of traffic.
#[derive(Debug, Default, Clone)]
struct Tally {
    rounds: usize,
    request_bytes: usize,
    reply_bytes: usize,
    docs_up: usize,
    docs_down: usize,
    elapsed: Duration,
    /// Of `elapsed`: the device's prepare, the server's handle, the device's receive.
    prepare: Duration,
    handle: Duration,
    receive: Duration,
}

fn session<'a>(
    actor: &'a Actor,
    scope: &'a UserScope,
    context: WorkflowContext<'a>,
) -> ServerSession<'a, UserScope> {
    ServerSession {
        automate: &wangge_sync_core::sync::server::NoAutomation,
        writer: actor,
        scope,
        rules: Rules { context },
        limits: Limits::default(),
    }
}

/// Rounds until the device has nothing more to do; the bytes of every request and
/// reply, and the time of prepare + handle + receive.
fn sync_rounds(
    server: &mut MemoryServer,
    device: &mut MemoryDevice,
    phone: &Actor,
    context: WorkflowContext<'_>,
    seed: u64,
    count_docs: bool,
) -> Tally {
    let scope = UserScope::of(phone);
    let session = session(phone, &scope, context);
    let mut device_session = DeviceSession::new(Limits::default(), seed);
    let mut tally = Tally::default();
    loop {
        let start = Instant::now();
        let request = device_session.prepare(device).expect("prepare a request");
        let prepared = Instant::now();
        let (reply, stats) = session
            .handle(server, &request)
            .expect("the server handles the request");
        let handled = Instant::now();
        let report = device_session
            .receive(device, &reply)
            .expect("the device commits the reply");
        let received = Instant::now();
        tally.prepare += prepared - start;
        tally.handle += handled - prepared;
        tally.receive += received - handled;
        tally.elapsed += received - start;
        assert!(report.refused.is_empty(), "refused: {:?}", report.refused);
        tally.rounds += 1;
        tally.request_bytes += request.len();
        tally.reply_bytes += reply.len();
        if count_docs {
            tally.docs_up += Request::decode(&request, usize::MAX)
                .expect("decode the request")
                .docs
                .len();
        }
        tally.docs_down += stats.sent_docs;
        if !report.more {
            return tally;
        }
        assert!(tally.rounds < 1_000, "no quiescence in 1,000 rounds");
    }
}

/// The device holds exactly what the server holds of every document in its scope.
fn assert_in_sync(server: &MemoryServer, device: &MemoryDevice, expected: usize) {
    let docs = device.documents();
    assert_eq!(docs.len(), expected, "documents on the phone");
    for (id, doc) in docs {
        let entry = server
            .entry(id)
            .expect("the server has the phone's document");
        assert_eq!(
            sorted_heads(&doc.server_heads),
            sorted_heads(&entry.heads),
            "{id}: phone and server differ"
        );
        assert!(!doc.unsent, "{id}: unsent on the phone");
        let loaded = load_chunks(&doc.chunks).expect("the phone's document loads");
        assert_eq!(
            sorted_heads(&loaded.get_heads()),
            sorted_heads(&entry.heads),
            "{id}: the phone's document is not at the server's heads"
        );
    }
}

/// One side of the baseline: a document and a sync state per document.
#[derive(Clone)]
struct Peer {
    docs: Vec<Automerge>,
    states: Vec<State>,
}

#[derive(Debug, Default, Clone)]
struct BaselineTally {
    rounds: usize,
    up_messages: usize,
    down_messages: usize,
    up_bytes: usize,
    down_bytes: usize,
    elapsed: Duration,
}

/// Plain Automerge sync of every document at once: the phone sends a message for
/// every document, then each side answers what it received, flight after flight,
/// until nobody has anything to say. A round trip is one flight up and the flight
/// down that answers it. Messages are encoded and decoded as on a wire.
fn baseline_sync(ids: &[String], phone: &mut Peer, server: &mut Peer) -> BaselineTally {
    let start = Instant::now();
    let mut tally = BaselineTally::default();
    let mut up: Vec<(usize, Vec<u8>)> = (0..ids.len())
        .filter_map(|i| {
            phone.docs[i]
                .generate_sync_message(&mut phone.states[i])
                .map(|m| (i, m.encode()))
        })
        .collect();
    while !up.is_empty() {
        tally.rounds += 1;
        tally.up_messages += up.len();
        tally.up_bytes += up
            .iter()
            .map(|(i, m)| m.len() + ids[*i].len())
            .sum::<usize>();
        let mut down = Vec::new();
        for (i, bytes) in up {
            let message = Message::decode(&bytes).expect("decode a sync message");
            server.docs[i]
                .receive_sync_message(&mut server.states[i], message)
                .expect("the server receives");
            if let Some(m) = server.docs[i].generate_sync_message(&mut server.states[i]) {
                down.push((i, m.encode()));
            }
        }
        tally.down_messages += down.len();
        tally.down_bytes += down
            .iter()
            .map(|(i, m)| m.len() + ids[*i].len())
            .sum::<usize>();
        up = Vec::new();
        for (i, bytes) in down {
            let message = Message::decode(&bytes).expect("decode a sync message");
            phone.docs[i]
                .receive_sync_message(&mut phone.states[i], message)
                .expect("the phone receives");
            if let Some(m) = phone.docs[i].generate_sync_message(&mut phone.states[i]) {
                up.push((i, m.encode()));
            }
        }
        assert!(tally.rounds < 100, "baseline: no quiescence in 100 rounds");
    }
    tally.elapsed = start.elapsed();
    tally
}

/// Both sides of the baseline hold the same documents and have nothing to say.
fn assert_quiescent(ids: &[String], phone: &mut Peer, server: &mut Peer) {
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            phone.docs[i].get_heads(),
            server.docs[i].get_heads(),
            "baseline: {id} differs"
        );
        assert!(
            phone.docs[i]
                .generate_sync_message(&mut phone.states[i])
                .is_none()
                && server.docs[i]
                    .generate_sync_message(&mut server.states[i])
                    .is_none(),
            "baseline: {id} is not quiescent"
        );
    }
}

/// A sync state as it comes back from storage.
fn persisted(state: &State) -> State {
    State::decode(&state.encode()).expect("decode a sync state")
}

fn raw_len(changes: &[Change]) -> usize {
    changes.iter().map(|c| c.raw_bytes().len()).sum()
}

/// The new changes of `case` since `heads`.
fn new_changes(case: &CaseDocument, heads: &[ChangeHash]) -> Vec<Change> {
    case.automerge().get_changes(heads)
}

fn kb(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{:.2} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} KB", bytes as f64 / 1e3)
    }
}

/// The mean time of `f` over `sample`.
fn time_each<T>(sample: &[T], mut f: impl FnMut(&T)) -> Duration {
    let start = Instant::now();
    for item in sample {
        f(item);
    }
    start.elapsed() / sample.len() as u32
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Stores changes made by others (or a whole save) on the server, with the meta the
/// document now has.
fn store_case(
    server: &mut MemoryServer,
    context: &WorkflowContext<'_>,
    id: &str,
    case: &CaseDocument,
    chunks: Vec<Vec<u8>>,
) {
    let (written, meta) = DocMeta::of(DocKind::Case, case.automerge(), context);
    assert_eq!(written.as_deref(), Some(id), "the document's id");
    server.store_server_changes(DocWrite {
        id: id.to_owned(),
        kind: DocKind::Case,
        changes: chunks,
        meta,
        heads: sorted_heads(&case.automerge().get_heads()),
        merged: None,
    });
}

/// Other people act on `case` (a copy of the server's) while the phone is offline;
/// stored on the server. Returns the new changes.
fn edit_on_server(
    rng: &mut Rng,
    server: &mut MemoryServer,
    context: &WorkflowContext<'_>,
    people: &People,
    community: &Community,
    doc: &Doc,
    minutes: i64,
) -> Vec<Change> {
    let mut case = doc.case.clone();
    let heads = case.automerge().get_heads();
    let view = case.fold(context);
    let (who, action, n) = next_step(rng, &view, people, community);
    act(rng, context, &mut case, who, action, minutes, n);
    let changes = new_changes(&case, &heads);
    let raw = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
    store_case(server, context, &doc.id, &case, raw);
    changes
}

fn row(out: &mut String, cells: &[&str]) {
    writeln!(out, "| {} |", cells.join(" | ")).expect("write to a String");
}

fn ratio(a: usize, b: usize) -> String {
    format!("{:.2}x", a as f64 / b as f64)
}

fn benches(c: &mut Criterion) {
    let clock = Instant::now();
    let progress = |what: &str| eprintln!("sync: [{:6.1} s] {what}", clock.elapsed().as_secs_f64());
    let calendar = WorkCalendar::standard();
    let context = WorkflowContext {
        catalog: Catalog::builtin(),
        calendar: &calendar,
    };
    let mut rng = Rng(20_261_128);
    let people = people(&mut rng);
    let categories: Vec<(String, String, TeamId)> = Catalog::builtin()
        .categories()
        .map(|c| (c.code.to_string(), c.name_zh.clone(), c.team.clone()))
        .collect();

    // The world, stored on the server as saves.
    let start = Instant::now();
    let home: Vec<Doc> = (0..CASES)
        .map(|_| {
            let (id, case) = build_case(&mut rng, &context, &people, &people.home, &categories);
            Doc { id, case }
        })
        .collect();
    let other: Vec<Doc> = (0..OTHER_CASES)
        .map(|_| {
            let (id, case) = build_case(&mut rng, &context, &people, &people.other, &categories);
            Doc { id, case }
        })
        .collect();
    let build_time = start.elapsed();
    let mut server = MemoryServer::new();
    // Interleaved, as a city's cases arrive.
    for (i, doc) in home.iter().enumerate() {
        store_case(
            &mut server,
            &context,
            &doc.id,
            &doc.case,
            vec![doc.case.save()],
        );
        if i % (CASES / OTHER_CASES) == 0 {
            let o = &other[i / (CASES / OTHER_CASES)];
            store_case(&mut server, &context, &o.id, &o.case, vec![o.case.save()]);
        }
    }
    progress("stored on the server");
    let saves: Vec<usize> = home.iter().map(|d| d.case.save().len()).collect();
    let saves_sum: usize = saves.iter().sum();
    let mut sorted_saves = saves.clone();
    sorted_saves.sort_unstable();
    let all_changes: Vec<usize> = home
        .iter()
        .map(|d| d.case.automerge().get_changes(&[]).len())
        .collect();
    let statuses = {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for doc in &home {
            let status = doc.case.fold(&context).status.expect("a status");
            *counts.entry(status.as_str()).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let server_fresh = server.clone();
    progress("statistics");
    eprintln!(
        "sync: built {} cases in {:.1} s",
        CASES + OTHER_CASES,
        build_time.as_secs_f64()
    );

    // 2. Bootstrap: a new phone whose scope holds the 5,000 cases.
    let phone = &people.phone;
    let mut device = MemoryDevice::new();
    let boot = sync_rounds(&mut server, &mut device, phone, context, 1, true);
    progress("bootstrap");
    assert_in_sync(&server, &device, CASES);
    progress("bootstrap checked");

    // The same world on a server fed every case as its changes (one chunk per change,
    // as `ServerSession::handle` stores a device's changes). The storages compact to
    // one save in every write, so this ends at the saves' bytes too; before they did
    // (32 chunks), it was 1.89x the saves.
    let mut raw_all = 0;
    let mut server_arrived = MemoryServer::new();
    for (i, doc) in home.iter().enumerate() {
        let chunks: Vec<Vec<u8>> = doc
            .case
            .automerge()
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        raw_all += chunks.iter().map(Vec::len).sum::<usize>();
        store_case(&mut server_arrived, &context, &doc.id, &doc.case, chunks);
        if i % (CASES / OTHER_CASES) == 0 {
            let o = &other[i / (CASES / OTHER_CASES)];
            let chunks = o
                .case
                .automerge()
                .get_changes(&[])
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect();
            store_case(&mut server_arrived, &context, &o.id, &o.case, chunks);
        }
    }
    let mut device_arrived = MemoryDevice::new();
    let boot_arrived = sync_rounds(
        &mut server_arrived,
        &mut device_arrived,
        phone,
        context,
        6,
        true,
    );
    assert_in_sync(&server_arrived, &device_arrived, CASES);
    drop((server_arrived, device_arrived));
    progress("bootstrap from stored changes");

    // The baseline's bootstrap: the phone knows the ids, starts each document empty.
    let ids: Vec<String> = home.iter().map(|d| d.id.clone()).collect();
    let mut base_phone = Peer {
        docs: vec![Automerge::new(); CASES],
        states: vec![State::new(); CASES],
    };
    let mut base_server = Peer {
        docs: home.iter().map(|d| d.case.automerge().clone()).collect(),
        states: vec![State::new(); CASES],
    };
    let base_boot = baseline_sync(&ids, &mut base_phone, &mut base_server);
    assert_quiescent(&ids, &mut base_phone, &mut base_server);
    let base_boot_total = base_boot.up_bytes + base_boot.down_bytes;
    progress("baseline bootstrap");

    // Offline: other people act on 200 of the phone's cases and 100 others, stored on
    // the server; the phone's user comments on 50 other cases.
    let mut order: Vec<usize> = (0..CASES).collect();
    rng.shuffle(&mut order);
    let mut server_edits: Vec<(usize, Vec<Change>)> = Vec::new();
    for (k, &i) in order[..SERVER_EDITS].iter().enumerate() {
        let minutes = OFFLINE_DAY + 2 * k as i64;
        let changes = edit_on_server(
            &mut rng,
            &mut server,
            &context,
            &people,
            &people.home,
            &home[i],
            minutes,
        );
        server_edits.push((i, changes));
        if k < OTHER_EDITS {
            let o = &other[k * (OTHER_CASES / OTHER_EDITS)];
            edit_on_server(
                &mut rng,
                &mut server,
                &context,
                &people,
                &people.other,
                o,
                minutes + 1,
            );
        }
    }
    let mut phone_edits: Vec<(usize, Vec<Change>)> = Vec::new();
    for (k, &i) in order[SERVER_EDITS..SERVER_EDITS + PHONE_EDITS]
        .iter()
        .enumerate()
    {
        let id = &home[i].id;
        let chunks = device.documents()[id].chunks.clone();
        let mut case =
            CaseDocument::from_automerge(load_chunks(&chunks).expect("the phone's case loads"));
        let heads = case.automerge().get_heads();
        let n = Some(note(&mut rng));
        let minutes = OFFLINE_DAY + 30 + 7 * k as i64;
        act(
            &mut rng,
            &context,
            &mut case,
            phone,
            Action::Comment,
            minutes,
            n,
        );
        phone_edits.push((i, new_changes(&case, &heads)));
        DeviceSession::record_local(&mut device, id, DocKind::Case, case.automerge())
            .expect("record the comment on the phone");
    }
    let count = |edits: &[(usize, Vec<Change>)]| edits.iter().map(|(_, c)| c.len()).sum::<usize>();
    let raw = |edits: &[(usize, Vec<Change>)]| edits.iter().map(|(_, c)| raw_len(c)).sum::<usize>();
    let wire = |edits: &[(usize, Vec<Change>)]| {
        edits
            .iter()
            .flat_map(|(_, c)| c.iter())
            .map(|c| c.clone().bytes().len())
            .sum::<usize>()
    };
    let changed_docs = SERVER_EDITS + PHONE_EDITS;
    let raw_server = raw(&server_edits);
    let raw_phone = raw(&phone_edits);
    let raw_total = raw_server + raw_phone;
    let wire_total = wire(&server_edits) + wire(&phone_edits);
    let changes_exchanged = count(&server_edits) + count(&phone_edits);

    progress("offline edits");
    // 1. Reconnect.
    let server_offline = server.clone();
    let device_offline = device.clone();
    let reconnect = sync_rounds(&mut server, &mut device, phone, context, 2, true);
    assert_in_sync(&server, &device, CASES);
    let reconnect_total = reconnect.request_bytes + reconnect.reply_bytes;
    let idle = sync_rounds(&mut server, &mut device, phone, context, 3, true);
    progress("reconnect");
    assert_eq!(idle.docs_down, 0, "nothing left after the reconnect");

    // What storage costs per document: both sides of our protocol keep documents as
    // bytes and load (and the device re-saves) every document a round touches.
    let sample: Vec<Vec<u8>> = home.iter().take(1_000).map(|d| d.case.save()).collect();
    let load = time_each(&sample, |s| {
        black_box(Automerge::load(s).expect("load"));
    });
    let load_unchecked = time_each(&sample, |s| {
        let options = LoadOptions::new().verification_mode(VerificationMode::DontCheck);
        black_box(Automerge::load_with_options(s, options).expect("load"));
    });
    let incremental = time_each(&sample, |s| {
        let mut doc = Automerge::new();
        black_box(doc.load_incremental(s).expect("load"));
        black_box(doc);
    });
    let loaded: Vec<Automerge> = sample
        .iter()
        .map(|s| Automerge::load(s).expect("load"))
        .collect();
    let save = time_each(&loaded, |d| {
        black_box(d.save());
    });
    drop(loaded);
    progress("storage costs");

    // 3. The baseline's reconnect, on the same documents and the same changes.
    let apply = |peer: &mut Peer, edits: &[(usize, Vec<Change>)]| {
        for (i, changes) in edits {
            peer.docs[*i]
                .apply_changes(changes.iter().cloned())
                .expect("apply the offline changes");
        }
    };
    let agrees = |peer: &Peer| {
        for (i, id) in ids.iter().enumerate() {
            let entry = server.entry(id).expect("on the server");
            assert_eq!(
                sorted_heads(&peer.docs[i].get_heads()),
                sorted_heads(&entry.heads),
                "baseline and ours end differently for {id}"
            );
        }
    };
    let mut offline_phone = Peer {
        docs: base_phone.docs.clone(),
        states: base_phone.states.iter().map(persisted).collect(),
    };
    apply(&mut offline_phone, &phone_edits);
    let mut offline_server = Peer {
        docs: base_server.docs.clone(),
        states: base_server.states.iter().map(persisted).collect(),
    };
    apply(&mut offline_server, &server_edits);
    let (mut phone_a, mut server_a) = (offline_phone.clone(), offline_server.clone());
    let base_a = baseline_sync(&ids, &mut phone_a, &mut server_a);
    assert_quiescent(&ids, &mut phone_a, &mut server_a);
    agrees(&server_a);
    progress("baseline reconnect");
    drop((phone_a, server_a));
    // Variant: the server kept its states in memory since the bootstrap.
    let mut server_b = offline_server.clone();
    server_b.states = base_server.states.clone();
    let mut phone_b = offline_phone.clone();
    let base_b = baseline_sync(&ids, &mut phone_b, &mut server_b);
    assert_quiescent(&ids, &mut phone_b, &mut server_b);
    agrees(&server_b);
    progress("baseline reconnect, server states in memory");
    drop((phone_b, server_b));

    // The table.
    let a_total = base_a.up_bytes + base_a.down_bytes;
    let b_total = base_b.up_bytes + base_b.down_bytes;
    let bound =
        (RECONNECT_RATIO_GOAL * raw_total as f64) as usize + RECONNECT_PER_DOC_GOAL * changed_docs;
    let per_doc = |total: usize| {
        format!(
            "{:.0} B",
            (total as f64 - raw_total as f64) / changed_docs as f64
        )
    };
    let mut out = String::new();
    writeln!(
        out,
        "World: {CASES} cases in the phone's community ({COMMUNITY}, 60 grids) + {OTHER_CASES} \
         in {OTHER_COMMUNITY}; phone's cases: {} changes, saved {} B min / {} B median / {} B \
         max / {:.0} B mean ({} in all); statuses: {statuses}. Built in {:.1} s.",
        all_changes.iter().sum::<usize>(),
        sorted_saves[0],
        sorted_saves[CASES / 2],
        sorted_saves[CASES - 1],
        saves_sum as f64 / CASES as f64,
        kb(saves_sum),
        build_time.as_secs_f64()
    )
    .expect("write to a String");
    writeln!(
        out,
        "Offline: {SERVER_EDITS} of the phone's cases changed on the server, {PHONE_EDITS} on \
         the phone, {OTHER_EDITS} outside its scope; {changes_exchanged} changes, {raw_total} B \
         raw ({raw_server} B server side, {raw_phone} B phone side; {wire_total} B as encoded \
         for the wire, DEFLATE above 256 B).\n"
    )
    .expect("write to a String");
    writeln!(out, "Reconnect after a day offline:\n").expect("write to a String");
    row(
        &mut out,
        &[
            "measure",
            "goal",
            "ours",
            "baseline, states persisted",
            "baseline, server states in memory",
        ],
    );
    row(&mut out, &["---"; 5]);
    row(
        &mut out,
        &[
            "round trips until quiescent",
            "1",
            &reconnect.rounds.to_string(),
            &base_a.rounds.to_string(),
            &base_b.rounds.to_string(),
        ],
    );
    row(
        &mut out,
        &[
            "messages up / down",
            "—",
            &format!(
                "{} / {} ({} docs up, {} down)",
                reconnect.rounds, reconnect.rounds, reconnect.docs_up, reconnect.docs_down
            ),
            &format!("{} / {}", base_a.up_messages, base_a.down_messages),
            &format!("{} / {}", base_b.up_messages, base_b.down_messages),
        ],
    );
    row(
        &mut out,
        &[
            "bytes up / down",
            "—",
            &format!("{} / {}", reconnect.request_bytes, reconnect.reply_bytes),
            &format!("{} / {}", base_a.up_bytes, base_a.down_bytes),
            &format!("{} / {}", base_b.up_bytes, base_b.down_bytes),
        ],
    );
    row(
        &mut out,
        &[
            "total bytes",
            &format!("≤ {bound} ({})", kb(bound)),
            &format!("**{reconnect_total}** ({})", kb(reconnect_total)),
            &format!("{a_total} ({})", kb(a_total)),
            &format!("{b_total} ({})", kb(b_total)),
        ],
    );
    row(
        &mut out,
        &[
            "total / raw change bytes",
            "≤ 1.2x + 100 B/doc",
            &format!("**{}**", ratio(reconnect_total, raw_total)),
            &ratio(a_total, raw_total),
            &ratio(b_total, raw_total),
        ],
    );
    row(
        &mut out,
        &[
            "(total − raw) per changed document",
            "—",
            &per_doc(reconnect_total),
            &per_doc(a_total),
            &per_doc(b_total),
        ],
    );
    row(
        &mut out,
        &[
            "baseline / ours, bytes",
            "—",
            "1x",
            &ratio(a_total, reconnect_total),
            &ratio(b_total, reconnect_total),
        ],
    );
    row(
        &mut out,
        &[
            "baseline / ours, messages",
            "—",
            "1x",
            &ratio(
                base_a.up_messages + base_a.down_messages,
                2 * reconnect.rounds,
            ),
            &ratio(
                base_b.up_messages + base_b.down_messages,
                2 * reconnect.rounds,
            ),
        ],
    );
    row(
        &mut out,
        &[
            "wall time, both sides in one thread (once)",
            "—",
            &ms(reconnect.elapsed),
            &ms(base_a.elapsed),
            &ms(base_b.elapsed),
        ],
    );
    let split = |t: &Tally| format!("{} / {} / {}", ms(t.prepare), ms(t.handle), ms(t.receive));
    row(
        &mut out,
        &[
            "of which device prepare / server handle / device receive",
            "—",
            &split(&reconnect),
            "",
            "",
        ],
    );
    writeln!(
        out,
        "\nA sync right after: {} round, {} B up, {} B down.\n",
        idle.rounds, idle.request_bytes, idle.reply_bytes
    )
    .expect("write to a String");
    writeln!(
        out,
        "Bootstrap of a new phone ({CASES} cases; \"saves\": the server holds each case as \
         one compacted save; \"changes\": fed to the server as its changes, one chunk per \
         change, {} B of changes in all, compacted by the storage on arrival):\n",
        raw_all
    )
    .expect("write to a String");
    row(
        &mut out,
        &[
            "measure",
            "goal",
            "ours, saves",
            "ours, changes",
            "baseline",
        ],
    );
    row(&mut out, &["---"; 5]);
    let both = |f: &dyn Fn(&Tally) -> String| [f(&boot), f(&boot_arrived)];
    let [a, b] = both(&|t| t.rounds.to_string());
    row(
        &mut out,
        &["round trips", "—", &a, &b, &base_boot.rounds.to_string()],
    );
    let [a, b] = both(&|t| format!("{} / {}", t.rounds, t.rounds));
    row(
        &mut out,
        &[
            "messages up / down",
            "—",
            &a,
            &b,
            &format!("{} / {}", base_boot.up_messages, base_boot.down_messages),
        ],
    );
    let [a, b] = both(&|t| format!("{} / {}", t.request_bytes, t.reply_bytes));
    row(
        &mut out,
        &[
            "bytes up / down",
            "—",
            &a,
            &b,
            &format!("{} / {}", base_boot.up_bytes, base_boot.down_bytes),
        ],
    );
    let total = |t: &Tally| t.request_bytes + t.reply_bytes;
    let [a, b] = both(&|t| format!("**{}** ({})", total(t), kb(total(t))));
    row(
        &mut out,
        &[
            "total bytes",
            &format!(
                "≤ {} (1.1x saves)",
                (BOOTSTRAP_RATIO_GOAL * saves_sum as f64) as usize
            ),
            &a,
            &b,
            &format!("{base_boot_total} ({})", kb(base_boot_total)),
        ],
    );
    let [a, b] = both(&|t| format!("**{}**", ratio(total(t), saves_sum)));
    row(
        &mut out,
        &[
            "total / sum of saves",
            "≤ 1.1x",
            &a,
            &b,
            &ratio(base_boot_total, saves_sum),
        ],
    );
    let over = |total: usize| format!("{:.0} B", (total as f64 - saves_sum as f64) / CASES as f64);
    let [a, b] = both(&|t| over(total(t)));
    row(
        &mut out,
        &[
            "(total − saves) per document",
            "—",
            &a,
            &b,
            &over(base_boot_total),
        ],
    );
    let [a, b] = both(&|t| ms(t.elapsed));
    row(
        &mut out,
        &[
            "wall time, both sides in one thread (once)",
            "—",
            &a,
            &b,
            &ms(base_boot.elapsed),
        ],
    );
    let [a, b] = both(&split);
    row(
        &mut out,
        &[
            "of which device prepare / server handle / device receive",
            "—",
            &a,
            &b,
            "",
        ],
    );
    writeln!(
        out,
        "\nStorage cost per document (mean over 1,000 of the phone's saved cases, once): \
         `Automerge::load` {} ({} with `VerificationMode::DontCheck`); `load_incremental` \
         of the save into an empty document {}; `save()` {}.",
        us(load),
        us(load_unchecked),
        us(incremental),
        us(save)
    )
    .expect("write to a String");
    eprintln!("sync:\n{out}");
    std::fs::create_dir_all(results_dir("sync")).expect("results dir");
    std::fs::write(results_dir("sync").join("results.txt"), &out).expect("results");

    // Criterion: one reconnect round, and a whole bootstrap.
    let mut group = c.benchmark_group("reconnect");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("round_5000_docs_250_changed", |b| {
        b.iter_batched(
            || (server_offline.clone(), device_offline.clone()),
            |(mut server, mut device)| {
                let tally = sync_rounds(&mut server, &mut device, phone, context, 4, false);
                black_box(tally);
                (server, device)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("baseline_reconnect");
    group.sample_size(10);
    group.bench_function("states_persisted_5000_docs_250_changed", |b| {
        b.iter_batched(
            || (offline_phone.clone(), offline_server.clone()),
            |(mut phone, mut server)| {
                let tally = baseline_sync(&ids, &mut phone, &mut server);
                black_box(tally);
                (phone, server)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("bootstrap");
    group.sample_size(10);
    // One bootstrap per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(boot.elapsed.mul_f64(8.0).max(Duration::from_secs(5)));
    group.bench_function("5000_docs", |b| {
        b.iter_batched(
            || (server_fresh.clone(), MemoryDevice::new()),
            |(mut server, mut device)| {
                let tally = sync_rounds(&mut server, &mut device, phone, context, 5, false);
                black_box(tally);
                (server, device)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = sync_benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(sync_benches);
