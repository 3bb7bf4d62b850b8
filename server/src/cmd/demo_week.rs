//! `wangge demo`'s week (演示周): the first start fills an empty demo database with a
//! believable week of work, so every screen of the web console has something to show.
//!
//! Everything goes through the code paths of real use, at the week's own times:
//! phones (field workers, the acceptor, the dispatcher, the shift lead, the grid
//! leader, the supervisors, the 12319 operator) are sync-core device sessions that
//! write case documents and patrol logs with the real actors and send them through
//! [`api::round_at`] — what `POST /v1/sync` runs past HTTP — with the server's clock at
//! the simulated moment; calls are taken in by [`intake::create_with_id`], what
//! `POST /v1/cases` runs; overdue cases go up by the server's own escalation pass
//! (`escalation::escalate_overdue_cases`) every half hour of the week. Why not the HTTP
//! API in-process: its handlers stamp every write with the wall clock, and a week
//! written "now" would have no history, nothing overdue and no patrol days. Why not
//! rows written by hand: the folds, the automation, the patrol assessment and the
//! assessment facts would not be the server's.
//!
//! Deterministic: every choice comes from `--seed`, case and entry ids included, and
//! every time from the week's end (`--week-ending`, by default the demo's start). The
//! server's own ids (its automation's Automerge actors) stay random; they change no
//! status.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone as _, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use wangge_server::api::{self, AppState};
use wangge_server::intake::{self, Contact, Intake, Point, Reporter};
use wangge_server::store::User;
use wangge_server::store::cases::{CaseFilter, CaseRow};
use wangge_sync_core::calendar::SHANGHAI;
use wangge_sync_core::case::{Action, CaseDocument, NewCase, Position, ReplyChannel, Source};
use wangge_sync_core::catalog::{CategoryCode, TeamId};
use wangge_sync_core::geo::{Crs, LonLat, distance_m};
use wangge_sync_core::grid::{GridCode, GridIndex};
use wangge_sync_core::patrol::{CheckIn, PatrolLog, Review, TrackPoint, Verdict, patrol_log_id};
use wangge_sync_core::role::{Actor, GridScope, Role};
use wangge_sync_core::sync::device::DeviceSession;
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::Limits;
use wangge_sync_core::sync::{DocKind, load_chunks};

/// The seed when `--seed` is not given: the same demo every time.
pub const DEFAULT_SEED: u64 = 12319;

/// How many cases the week has (a street's week in a city of Zhengzhou's size).
const CASES: usize = 300;

/// How often the simulated phones may sync and the server escalates: every half hour.
const TICK: TimeDelta = TimeDelta::minutes(30);

/// What `wangge demo` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Week {
    /// Every choice comes from it.
    pub seed: u64,
    /// When the week ends; the demo's start when `None`.
    pub ending: Option<DateTime<Utc>>,
}

/// Categories the demo's teams handle, with what a reporter writes about them.
const PROBLEMS: &[(&str, &str)] = &[
    ("E0550", "早点摊占用人行道经营，行人绕行"),
    ("E0504", "商户在门前摆放货架，店外经营"),
    ("E0506", "电动车在盲道上乱停放"),
    ("E0501", "流动水果摊贩占道叫卖"),
    ("E0202", "门头广告牌未经审批悬挂"),
    ("E0302", "工地裸土未覆盖，扬尘严重"),
    ("E0510", "夜间露天烧烤，油烟扰民"),
    ("E0507", "楼道口堆放建筑材料"),
    ("E0102", "路边有暴露垃圾未清运"),
    ("E0104", "路面有油污和纸屑"),
    ("C0305", "垃圾箱破损，垃圾外溢"),
    ("E0201", "电线杆上张贴小广告"),
    ("C0301", "公厕水龙头损坏，漏水"),
    ("E0108", "废旧沙发丢弃在路边"),
    ("E0350", "人行道地砖松动破损"),
    ("C0118", "路灯夜间不亮"),
    ("C0102", "污水井盖缺失，存在安全隐患"),
    ("C0104", "雨水箅子破损"),
    ("E0406", "路口积水严重，车辆难以通行"),
    ("C0213", "路名牌歪斜"),
    ("C0116", "配电箱柜门损坏"),
    ("C0105", "电力井盖松动，车辆经过有响声"),
];

const ROADS: &[&str] = &[
    "金水路",
    "花园路",
    "经三路",
    "纬五路",
    "农业路",
    "丰产路",
    "经七路",
    "红专路",
];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];

/// How far a case goes before its people stop working on it (the rest of the week
/// decides the rest: a case reported on the last afternoon is still early).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Worked to the end (closed; replied to, for a caller's case).
    Closed,
    /// Left in this status: nobody takes the next step (so it runs overdue, and a
    /// registered or dispatched one goes up level by level).
    StopsAt(&'static str),
    /// Voided by the acceptor (a duplicate, not a problem).
    Voided,
}

/// One planned case.
#[derive(Debug)]
struct Plan {
    id: String,
    source: Source,
    category: CategoryCode,
    description: &'static str,
    address: String,
    grid: GridCode,
    position: LonLat,
    reported_at: DateTime<Utc>,
    /// A field report's reporter (an index into the phones).
    reporter: Option<usize>,
    fate: Fate,
    rework: bool,
    slow: bool,
    reply: bool,
    rng: StdRng,
    /// What the case looked like when its next step was planned, and that step.
    seen: Option<(String, String, Option<i64>)>,
    next: Option<(DateTime<Utc>, Step)>,
    reworked: bool,
}

/// The step a person takes next on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Accept,
    Void,
    Register,
    Dispatch,
    Handle,
    Verify,
    Rework,
    Close,
    Reply,
}

/// A signed-in phone of the demo: its user, its documents, its sync session.
struct Phone {
    actor: Actor,
    store: MemoryDevice,
    session: DeviceSession,
    /// Case work not yet sent: the phone syncs at once.
    unsent: bool,
    /// Patrol work not yet sent: sent at noon and in the evening.
    walk_unsent: bool,
    /// Today's patrol log being written, and what is left of the day's walk.
    log: Option<(NaiveDate, PatrolLog)>,
    walk: Vec<Walked>,
}

/// What a walking field worker's phone records.
enum Walked {
    Fix(TrackPoint),
    CheckIn(CheckIn),
}

impl Walked {
    fn at_ms(&self) -> i64 {
        match self {
            Walked::Fix(point) => point.at_ms,
            Walked::CheckIn(check_in) => check_in.at.timestamp_millis(),
        }
    }
}

/// A community's walk: one stop per level-3 grid (a point inside its first unit
/// grid), nearest next.
#[derive(Debug, Clone)]
struct Stop {
    grid: GridCode,
    point: LonLat,
}

/// Fills the demo database with its week, unless it holds a case already.
pub async fn seed_once(state: &AppState, week: Week, password: &str) -> anyhow::Result<()> {
    let any = CaseFilter {
        scope: vec![String::new()],
        limit: 1,
        ..CaseFilter::default()
    };
    if !state.store.cases_list(&any).await?.is_empty() {
        return Ok(());
    }
    let Some(grids) = state.grids.clone() else {
        bail!("the demo database has no grids");
    };
    let Some(home) = state
        .store
        .user("demo-grid-leader")
        .await?
        .and_then(|u| u.scope.prefixes().first().cloned())
        .filter(|p| p.len() == 12)
    else {
        bail!("the demo accounts are missing");
    };
    let started = std::time::Instant::now();
    let real_now = DateTime::from_timestamp_millis(api::now_ms()).unwrap_or_default();
    let end = week.ending.unwrap_or(real_now);
    let start = end - TimeDelta::days(7);
    eprintln!(
        "filling the demo with a week of work ({} to {}, seed {}; once)…",
        start.with_timezone(&SHANGHAI).format("%Y-%m-%d %H:%M"),
        end.with_timezone(&SHANGHAI).format("%Y-%m-%d %H:%M"),
        week.seed
    );
    let mut rng = StdRng::seed_from_u64(week.seed);

    // The home community and up to three more of its street, each with its field workers.
    let street = &home[..9];
    let mut communities: Vec<String> = vec![home.clone()];
    for code in grids.codes_under(street) {
        let community = code.community().to_string();
        if communities.len() < 4 && !communities.contains(&community) {
            communities.push(community);
        }
    }
    add_field_workers(state, &communities[1..], password).await?;
    let stops: BTreeMap<String, Vec<Stop>> = communities
        .iter()
        .map(|c| (c.clone(), stops_of(&grids, c)))
        .collect();

    let mut phones = Vec::new();
    let mut ids: Vec<String> = vec![
        "officer",
        "assistant",
        "maintenance",
        "sanitation",
        "info-supervisor",
        "grid-leader",
        "acceptor",
        "shift-lead",
        "dispatcher",
        "power",
        "hotline",
        "district",
        "city",
    ]
    .into_iter()
    .map(|id| format!("demo-{id}"))
    .collect();
    for community in &communities[1..] {
        for role in NEIGHBOUR_ROLES {
            ids.push(neighbour_id(role.0, community));
        }
    }
    for id in &ids {
        let session = state
            .auth
            .login(
                id,
                password,
                None,
                "演示手机 demo phone",
                None,
                start.timestamp_millis(),
            )
            .await
            .map_err(|e| anyhow!("logging {id} in: {e}"))?;
        phones.push(Phone {
            actor: session.user.actor(&session.device.actor_id),
            store: MemoryDevice::new(),
            session: DeviceSession::new(Limits::default(), rng.random()),
            unsent: false,
            walk_unsent: false,
            log: None,
            walk: Vec::new(),
        });
    }
    let by_user = |user: &str| phones.iter().position(|p| p.actor.user == user);
    let (Some(acceptor), Some(shift_lead), Some(dispatcher), Some(hotline)) = (
        by_user("demo-acceptor"),
        by_user("demo-shift-lead"),
        by_user("demo-dispatcher"),
        by_user("demo-hotline"),
    ) else {
        bail!("the demo accounts are missing");
    };
    let (Some(district), Some(city), Some(grid_leader)) = (
        by_user("demo-district"),
        by_user("demo-city"),
        by_user("demo-grid-leader"),
    ) else {
        bail!("the demo accounts are missing");
    };
    let office = Office {
        acceptor,
        shift_lead,
        dispatcher,
        hotline,
        district,
        city,
    };

    let calendar = &state.sync.rules.calendar;
    let mut plans = plan_cases(
        &mut rng,
        &grids,
        &communities,
        &phones,
        start,
        end,
        calendar,
    );
    let walks = plan_walks(&mut rng, &phones, &stops, start, end, calendar);
    let mut walks = walks.into_iter().peekable();

    let context = state.sync.rules.context();
    // Ticks on the half hour, Zhengzhou time (UTC+8: the same half hours as UTC's).
    let mut tick = DateTime::from_timestamp(start.timestamp() / 1800 * 1800, 0).unwrap_or(start);
    let mut intake_taken = 0;
    let mut rounds = 0usize;
    while tick < end {
        let previous = tick;
        tick = (tick + TICK).min(end);
        let working = calendar.is_working_time(previous) || calendar.is_working_time(tick);
        let local = tick.with_timezone(&SHANGHAI);

        // The day's walks start: each field worker's phone records them as they happen.
        while let Some((phone, _, walked)) = walks.next_if(|(_, day_start, _)| *day_start <= tick) {
            phones[phone].walk.extend(walked);
        }
        for phone in &mut phones {
            record_walk(phone, tick)?;
        }

        // Reports of this half hour: phones write them, calls are taken in.
        for plan in plans
            .iter()
            .filter(|p| p.reported_at > previous && p.reported_at <= tick)
        {
            let new = NewCase {
                id: plan.id.clone(),
                category: plan.category,
                location: Position {
                    lon: plan.position.lon,
                    lat: plan.position.lat,
                    accuracy_m: Some(8.0),
                },
                grid: Some(plan.grid),
                address: plan.address.clone(),
                description: plan.description.to_owned(),
                source: plan.source,
                source_ref: None,
                caller: None,
            };
            match plan.reporter {
                Some(reporter) => {
                    let phone = &mut phones[reporter];
                    let entry = format!("{}-report", plan.id);
                    let case = CaseDocument::create(&new, &phone.actor, &entry, plan.reported_at)
                        .with_context(|| format!("reporting {}", plan.id))?;
                    DeviceSession::record_local(
                        &mut phone.store,
                        &plan.id,
                        DocKind::Case,
                        case.automerge(),
                    )
                    .map_err(|e| anyhow!("storing {} on the phone: {e:?}", plan.id))?;
                    if let Some((day, log)) = &mut phone.log
                        && *day == wangge_sync_core::patrol::patrol_date(plan.reported_at)
                    {
                        log.add_case_found(&phone.actor, &plan.id)?;
                        let log_id = patrol_log_id(&phone.actor.user, *day);
                        DeviceSession::record_local(
                            &mut phone.store,
                            &log_id,
                            DocKind::PatrolLog,
                            log.automerge(),
                        )
                        .map_err(|e| anyhow!("storing {log_id}: {e:?}"))?;
                        phone.walk_unsent = true;
                    }
                    phone.unsent = true;
                }
                None => {
                    intake_taken += 1;
                    let taker = if plan.source == Source::Hotline {
                        office.hotline
                    } else {
                        office.acceptor
                    };
                    let mut call = plan.rng.clone();
                    let caller = format!(
                        "{}{}",
                        SURNAMES[call.random_range(0..SURNAMES.len())],
                        if call.random_bool(0.5) {
                            "先生"
                        } else {
                            "女士"
                        }
                    );
                    let intake = Intake {
                        source: plan.source,
                        category: plan.category.to_string(),
                        description: plan.description.to_owned(),
                        address: plan.address.clone(),
                        point: Some(Point {
                            lon: plan.position.lon,
                            lat: plan.position.lat,
                            crs: Crs::Wgs84,
                        }),
                        grid: None,
                        photos: Vec::new(),
                        contact: Contact {
                            name: Some(caller),
                            phone: Some(format!("13{:09}", call.random_range(0..1_000_000_000u32))),
                            email: None,
                            wants_reply: plan.reply,
                        },
                        source_ref: (plan.source == Source::Hotline).then(|| {
                            format!(
                                "12319-{}-{intake_taken:04}",
                                plan.reported_at.with_timezone(&SHANGHAI).format("%Y%m%d")
                            )
                        }),
                    };
                    intake::create_with_id(
                        &state.store,
                        &state.push,
                        &state.sync.rules,
                        Reporter::User(&phones[taker].actor),
                        intake,
                        plan.id.clone(),
                        plan.reported_at,
                    )
                    .await
                    .map_err(|e| anyhow!("taking case {} in: {e}", plan.id))?;
                }
            }
        }

        // Who takes which step now, as the cases stand on the server.
        let mut work: BTreeMap<usize, Vec<(usize, Step)>> = BTreeMap::new();
        if working {
            let rows: BTreeMap<String, CaseRow> = state
                .store
                .cases_list(&CaseFilter {
                    scope: vec![String::new()],
                    limit: 1000,
                    ..CaseFilter::default()
                })
                .await?
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect();
            for (index, plan) in plans.iter_mut().enumerate() {
                let Some(row) = rows.get(&plan.id) else {
                    continue;
                };
                let Some(step) = plan.step_due(row, tick, calendar) else {
                    continue;
                };
                if let Some(phone) = who(step, row, plan, &phones, &office, &mut plan.rng.clone()) {
                    work.entry(phone).or_default().push((index, step));
                }
            }
        }
        // Field workers send their walk at noon and in the evening, like a phone on
        // a charger; everyone at the end.
        let send_walks = tick == end
            || matches!(
                local.time().format("%H:%M").to_string().as_str(),
                "12:00" | "18:00"
            );

        // The earlier days' logs reviewed first thing in the morning.
        let review_now = working && local.time().format("%H:%M").to_string() == "09:30";

        for (index, phone) in phones.iter_mut().enumerate() {
            let reviews = review_now && (index == grid_leader || index == office.shift_lead);
            let steps = work.remove(&index).unwrap_or_default();
            let busy = !steps.is_empty() || reviews || phone.unsent;
            let walk_to_send = phone.walk_unsent && send_walks;
            if !busy && !walk_to_send {
                continue;
            }
            rounds += sync(state, phone, tick).await?;
            let mut wrote = false;
            for (case, step) in steps {
                let plan = &mut plans[case];
                if act(phone, plan, step, tick, &context)? {
                    wrote = true;
                }
            }
            if reviews {
                let community_only = index == grid_leader;
                wrote |= review_logs(
                    phone,
                    local.date_naive(),
                    &home,
                    community_only,
                    &mut rng,
                    tick,
                )?;
            }
            if wrote {
                phone.unsent = true;
                rounds += sync(state, phone, tick).await?;
            }
        }

        let escalated = wangge_server::escalation::escalate_overdue_cases(
            &state.store,
            &state.sync.rules,
            tick,
        )
        .await?;
        if !escalated.is_empty() {
            tracing::debug!(
                cases = escalated.len(),
                "demo week: overdue cases escalated"
            );
        }
    }
    // What the server, had it run since the week's end, would have escalated by now.
    if end < real_now {
        wangge_server::escalation::escalate_overdue_cases(
            &state.store,
            &state.sync.rules,
            real_now,
        )
        .await?;
    }
    eprintln!(
        "the demo's week: {} cases, {} patrol phones, {rounds} sync rounds, in {:.0} s",
        plans.len(),
        phones
            .iter()
            .filter(|p| p.actor.role.is_field_worker())
            .count(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The office's people, by their phone.
struct Office {
    acceptor: usize,
    shift_lead: usize,
    dispatcher: usize,
    hotline: usize,
    district: usize,
    city: usize,
}

/// The roles posted in each neighbouring community, with their teams.
const NEIGHBOUR_ROLES: &[(&str, Role, Option<&str>)] = &[
    ("officer", Role::EnforcementOfficer, Some("enforcement")),
    (
        "maintenance",
        Role::MunicipalMaintenance,
        Some("municipal_maintenance"),
    ),
    ("sanitation", Role::SanitationWorker, Some("sanitation")),
    ("info-supervisor", Role::InformationSupervisor, None),
];

fn neighbour_id(role: &str, community: &str) -> String {
    format!("demo-{role}-{}", &community[community.len() - 3..])
}

/// Field workers for the neighbouring communities of the street, created the way
/// `wangge user add` creates a user (kept when they exist).
async fn add_field_workers(
    state: &AppState,
    communities: &[String],
    password: &str,
) -> anyhow::Result<()> {
    let password_hash = wangge_server::auth::hash_password(password)?;
    for community in communities {
        for (role_id, role, team) in NEIGHBOUR_ROLES {
            let user = User {
                id: neighbour_id(role_id, community),
                display_name: format!(
                    "演示{}{}",
                    role.name_zh(),
                    &community[community.len() - 3..]
                ),
                role: *role,
                team: team.map(TeamId::new).transpose()?,
                scope: community.parse::<GridScope>()?,
                password_hash: password_hash.clone(),
                created_at: api::now_ms(),
                disabled: false,
            };
            super::database::add_demo_user(state.store.as_ref(), &user).await?;
        }
    }
    Ok(())
}

/// One stop per level-3 grid of `community`, in walking order (nearest next).
fn stops_of(grids: &GridIndex, community: &str) -> Vec<Stop> {
    let mut seen = BTreeSet::new();
    let mut stops: Vec<Stop> = grids
        .codes_under(community)
        .iter()
        .filter(|code| grids.level3_of_grid(**code).is_some_and(|l| seen.insert(l)))
        .filter_map(|code| {
            let point = grids.interior_point(*code)?.to_wgs84(Crs::Gcj02);
            Some(Stop { grid: *code, point })
        })
        .collect();
    let mut ordered = Vec::with_capacity(stops.len());
    if !stops.is_empty() {
        ordered.push(stops.remove(0));
    }
    while !stops.is_empty() {
        let last = ordered[ordered.len() - 1].point;
        let nearest = (0..stops.len())
            .min_by(|a, b| {
                distance_m(last, stops[*a].point).total_cmp(&distance_m(last, stops[*b].point))
            })
            .unwrap_or(0);
        ordered.push(stops.remove(nearest));
    }
    ordered
}

/// A Zhengzhou wall-clock time of `day` as an instant.
fn at_local(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default();
    SHANGHAI
        .from_local_datetime(&day.and_time(time))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// The week's cases: when, where, by whom, from which source, and how far each goes.
fn plan_cases(
    rng: &mut StdRng,
    grids: &GridIndex,
    communities: &[String],
    phones: &[Phone],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    calendar: &wangge_sync_core::calendar::WorkCalendar,
) -> Vec<Plan> {
    let working = calendar.working_time_between(start, end);
    let mut plans = Vec::with_capacity(CASES);
    if working <= TimeDelta::zero() {
        return plans;
    }
    for _ in 0..CASES {
        let mut own = StdRng::seed_from_u64(rng.random());
        let source = match rng.random_range(0..100) {
            0..60 => Source::Patrol,
            60..85 => Source::Hotline,
            _ => Source::Citizen,
        };
        // Half the cases in the home community, the others around it.
        let community = if rng.random_bool(0.5) || communities.len() == 1 {
            &communities[0]
        } else {
            &communities[rng.random_range(1..communities.len())]
        };
        let codes = grids.codes_under(community);
        if codes.is_empty() {
            continue;
        }
        let grid = codes[rng.random_range(0..codes.len())];
        let Some(inside) = grids.interior_point(grid) else {
            continue;
        };
        // A few metres from the grid's inner point, if that stays in the grid.
        let jittered = LonLat::new(
            inside.lon + rng.random_range(-0.0002..0.0002),
            inside.lat + rng.random_range(-0.0002..0.0002),
        )
        .ok()
        .filter(|p| grids.locate_gcj02(*p) == Some(grid))
        .unwrap_or(inside);
        let (category, description) = PROBLEMS[rng.random_range(0..PROBLEMS.len())];
        let Ok(category) = category.parse::<CategoryCode>() else {
            continue;
        };
        let offset =
            TimeDelta::milliseconds(rng.random_range(0..working.num_milliseconds().max(1)));
        // Whole minutes, as people note them.
        let reported_at = calendar.add_working_time(start, offset);
        let reported_at =
            DateTime::from_timestamp(reported_at.timestamp() / 60 * 60, 0).unwrap_or(reported_at);
        if reported_at <= start || reported_at >= end {
            continue;
        }
        let here: Vec<usize> = phones
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.actor.role.is_field_worker()
                    && p.actor.scope.prefixes().iter().any(|s| s == community)
            })
            .map(|(i, _)| i)
            .collect();
        let reporter = if source == Source::Patrol && !here.is_empty() {
            Some(here[rng.random_range(0..here.len())])
        } else {
            None
        };
        let source = if reporter.is_none() && source == Source::Patrol {
            Source::Hotline
        } else {
            source
        };
        let road = ROADS[rng.random_range(0..ROADS.len())];
        let community_name = grids
            .describe(grid)
            .map(|d| d.community_name)
            .unwrap_or_default();
        let address = format!("{community_name} {road}{}号附近", rng.random_range(1..200));
        let fate = match rng.random_range(0..100) {
            0..6 => Fate::StopsAt("reported"),
            6..12 => Fate::Voided,
            12..15 => Fate::StopsAt("accepted"),
            15..19 => Fate::StopsAt("registered"),
            19..26 => Fate::StopsAt("dispatched"),
            26..31 => Fate::StopsAt("handled"),
            31..35 => Fate::StopsAt("verified"),
            _ => Fate::Closed,
        };
        let id = uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string();
        plans.push(Plan {
            id,
            source,
            category,
            description,
            address,
            grid,
            position: jittered.to_wgs84(Crs::Gcj02),
            reported_at,
            reporter,
            fate,
            rework: rng.random_bool(0.12),
            slow: rng.random_bool(0.12),
            reply: rng.random_bool(0.8),
            rng: StdRng::seed_from_u64(own.random()),
            seen: None,
            next: None,
            reworked: false,
        });
    }
    plans.sort_by_key(|p| p.reported_at);
    plans
}

/// Every field worker's walks of the week: per working day, a morning and an
/// afternoon round of their community's level-3 grids, a fix a minute and a check-in
/// at each stop (one grid or so skipped now and then). Sorted by the day's start.
fn plan_walks(
    rng: &mut StdRng,
    phones: &[Phone],
    stops: &BTreeMap<String, Vec<Stop>>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    calendar: &wangge_sync_core::calendar::WorkCalendar,
) -> Vec<(usize, DateTime<Utc>, Vec<Walked>)> {
    let mut walks = Vec::new();
    let first = start.with_timezone(&SHANGHAI).date_naive();
    let last = end.with_timezone(&SHANGHAI).date_naive();
    for day in first.iter_days().take_while(|d| *d <= last) {
        if !calendar.is_working_day(day) {
            continue;
        }
        for (index, phone) in phones.iter().enumerate() {
            if !phone.actor.role.is_field_worker() {
                continue;
            }
            let Some(route) = phone
                .actor
                .scope
                .prefixes()
                .first()
                .and_then(|c| stops.get(c))
                .filter(|r| !r.is_empty())
            else {
                continue;
            };
            let mut own = StdRng::seed_from_u64(rng.random());
            let mut walked = Vec::new();
            let skipped = own
                .random_bool(0.3)
                .then(|| own.random_range(0..route.len()));
            let morning = at_local(day, 9, own.random_range(0..20));
            walk(
                &mut own,
                route,
                false,
                skipped,
                morning,
                at_local(day, 11, 40),
                &mut walked,
            );
            let afternoon = at_local(day, 14, own.random_range(0..20));
            walk(
                &mut own,
                route,
                true,
                skipped,
                afternoon,
                at_local(day, 17, 30),
                &mut walked,
            );
            walked.retain(|w| {
                w.at_ms() > start.timestamp_millis() && w.at_ms() <= end.timestamp_millis()
            });
            if !walked.is_empty() {
                walks.push((index, morning, walked));
            }
        }
    }
    walks.sort_by_key(|(_, day_start, _)| *day_start);
    walks
}

/// One round of `route` from `from` to `until` at a walking pace.
fn walk(
    rng: &mut StdRng,
    route: &[Stop],
    reversed: bool,
    skipped: Option<usize>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    out: &mut Vec<Walked>,
) {
    let order: Vec<usize> = if reversed {
        (0..route.len()).rev().collect()
    } else {
        (0..route.len()).collect()
    };
    let mut here = route[order[0]].point;
    let mut time = from;
    let mut checked = BTreeSet::new();
    let fix = |rng: &mut StdRng, time: DateTime<Utc>, at: LonLat, out: &mut Vec<Walked>| {
        out.push(Walked::Fix(TrackPoint {
            at_ms: time.timestamp_millis(),
            lon: at.lon + rng.random_range(-0.00004..0.00004),
            lat: at.lat + rng.random_range(-0.00004..0.00004),
            accuracy_m: Some(rng.random_range(4.0..15.0)),
        }));
    };
    'walking: for _ in 0..4 {
        for &stop in &order {
            let target = route[stop].point;
            let metres = distance_m(here, target);
            // 1.2 m/s: 72 m a minute.
            let minutes = (metres / 72.0).ceil().max(1.0) as i64;
            for step in 1..=minutes {
                time += TimeDelta::minutes(1);
                if time >= until {
                    break 'walking;
                }
                let share = step as f64 / minutes as f64;
                let at = LonLat::new(
                    here.lon + (target.lon - here.lon) * share,
                    here.lat + (target.lat - here.lat) * share,
                )
                .unwrap_or(target);
                fix(rng, time, at, out);
            }
            here = target;
            if Some(stop) != skipped && checked.insert(stop) {
                out.push(Walked::CheckIn(CheckIn {
                    id: format!("{}-{stop}", time.timestamp()),
                    at: time,
                    position: Position {
                        lon: target.lon + rng.random_range(-0.00003..0.00003),
                        lat: target.lat + rng.random_range(-0.00003..0.00003),
                        accuracy_m: Some(rng.random_range(5.0..12.0)),
                    },
                    grid: Some(route[stop].grid),
                    note: None,
                }));
            }
            // A look around the grid.
            for _ in 0..rng.random_range(2..6) {
                time += TimeDelta::minutes(1);
                if time >= until {
                    break 'walking;
                }
                fix(rng, time, here, out);
            }
        }
    }
}

/// Writes what the phone's walk recorded up to `now` into the day's patrol log.
fn record_walk(phone: &mut Phone, now: DateTime<Utc>) -> anyhow::Result<()> {
    let now_ms = now.timestamp_millis();
    let due = phone
        .walk
        .iter()
        .take_while(|w| w.at_ms() <= now_ms)
        .count();
    if due == 0 {
        return Ok(());
    }
    let recorded: Vec<Walked> = phone.walk.drain(..due).collect();
    let mut fixes = Vec::new();
    for item in recorded {
        let at = DateTime::from_timestamp_millis(item.at_ms()).unwrap_or_default();
        let day = wangge_sync_core::patrol::patrol_date(at);
        if phone.log.as_ref().is_none_or(|(d, _)| *d != day) {
            flush_fixes(phone, &mut fixes)?;
            phone.log = Some((day, PatrolLog::create(&phone.actor, day)?));
        }
        match item {
            Walked::Fix(point) => fixes.push(point),
            Walked::CheckIn(check_in) => {
                flush_fixes(phone, &mut fixes)?;
                if let Some((_, log)) = &mut phone.log {
                    log.check_in(&phone.actor, &check_in)?;
                }
            }
        }
    }
    flush_fixes(phone, &mut fixes)?;
    if let Some((day, log)) = &phone.log {
        let id = patrol_log_id(&phone.actor.user, *day);
        DeviceSession::record_local(&mut phone.store, &id, DocKind::PatrolLog, log.automerge())
            .map_err(|e| anyhow!("storing {id}: {e:?}"))?;
        phone.walk_unsent = true;
    }
    Ok(())
}

fn flush_fixes(phone: &mut Phone, fixes: &mut Vec<TrackPoint>) -> anyhow::Result<()> {
    if let Some((_, log)) = &mut phone.log
        && !fixes.is_empty()
    {
        log.record_track(&phone.actor, fixes)?;
    }
    fixes.clear();
    Ok(())
}

/// Syncs `phone` with the server at `now` until neither side has more; the rounds run.
async fn sync(state: &AppState, phone: &mut Phone, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let now_ms = now.timestamp_millis();
    for round in 1..=50 {
        let request = phone
            .session
            .prepare(&mut phone.store)
            .map_err(|e| anyhow!("{}: preparing a sync round: {e:?}", phone.actor.user))?;
        let reply = api::round_at(state, phone.actor.clone(), request, now_ms, Some(now_ms))
            .await
            .map_err(|e| anyhow!("{}: sync round: {e:?}", phone.actor.user))?;
        let report = phone
            .session
            .receive(&mut phone.store, &reply)
            .map_err(|e| anyhow!("{}: sync reply: {e:?}", phone.actor.user))?;
        if !report.refused.is_empty() {
            bail!(
                "{}: the server refused {:?}",
                phone.actor.user,
                report.refused
            );
        }
        if !report.more {
            phone.unsent = false;
            phone.walk_unsent = false;
            return Ok(round);
        }
    }
    bail!("{} does not settle", phone.actor.user)
}

impl Plan {
    /// The step someone takes on this case now, if it is time: planned when the case
    /// (as stored) changed, taken once its time came.
    fn step_due(
        &mut self,
        row: &CaseRow,
        now: DateTime<Utc>,
        calendar: &wangge_sync_core::calendar::WorkCalendar,
    ) -> Option<Step> {
        let status = row.status.clone()?;
        let seen = (status.clone(), row.level.clone(), row.step_started_at);
        if self.seen.as_ref() != Some(&seen) {
            self.seen = Some(seen);
            self.next = self.plan_next(row, &status, calendar);
        }
        match self.next {
            Some((at, step)) if at <= now => Some(step),
            _ => None,
        }
    }

    fn plan_next(
        &mut self,
        row: &CaseRow,
        status: &str,
        calendar: &wangge_sync_core::calendar::WorkCalendar,
    ) -> Option<(DateTime<Utc>, Step)> {
        if let Fate::StopsAt(stop) = self.fate
            && stop == status
        {
            return None;
        }
        let since = row
            .step_started_at
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(self.reported_at);
        let rng = &mut self.rng;
        let working = |rng: &mut StdRng, low: i64, high: i64| {
            calendar.add_working_time(since, TimeDelta::minutes(rng.random_range(low..high)))
        };
        let step = match status {
            "reported" if self.fate == Fate::Voided => (working(rng, 10, 60), Step::Void),
            "reported" => (working(rng, 5, 50), Step::Accept),
            "accepted" => (working(rng, 5, 40), Step::Register),
            "registered" => (working(rng, 10, 70), Step::Dispatch),
            "dispatched" => {
                let due = row.due_at.and_then(DateTime::from_timestamp_millis)?;
                let share = if self.slow && !self.reworked {
                    rng.random_range(1.1..1.6)
                } else {
                    rng.random_range(0.15..0.85)
                };
                let span = (due - since).num_minutes().max(30) as f64 * share;
                let at = since + TimeDelta::minutes(span as i64);
                (calendar.next_working_time(at), Step::Handle)
            }
            "handled" if self.rework && !self.reworked => (working(rng, 20, 150), Step::Rework),
            "handled" => (working(rng, 20, 180), Step::Verify),
            "verified" => (working(rng, 10, 90), Step::Close),
            "closed" if row.step.as_deref() == Some("reply") && self.reply => {
                (working(rng, 30, 600), Step::Reply)
            }
            _ => return None,
        };
        Some(step)
    }
}

/// Whose phone takes `step` on the case.
fn who(
    step: Step,
    row: &CaseRow,
    plan: &Plan,
    phones: &[Phone],
    office: &Office,
    rng: &mut StdRng,
) -> Option<usize> {
    let grid = Some(plan.grid);
    let covering = |accept: &dyn Fn(&Actor) -> bool| -> Vec<usize> {
        phones
            .iter()
            .enumerate()
            .filter(|(_, p)| accept(&p.actor) && p.actor.scope.covers(grid.as_ref()))
            .map(|(i, _)| i)
            .collect()
    };
    let pick = |found: Vec<usize>, rng: &mut StdRng| -> Option<usize> {
        (!found.is_empty()).then(|| found[rng.random_range(0..found.len())])
    };
    match step {
        Step::Accept | Step::Void => Some(office.acceptor),
        Step::Register | Step::Close => Some(office.shift_lead),
        Step::Dispatch => Some(match row.level.as_str() {
            "city" => office.city,
            "district" => office.district,
            _ => office.dispatcher,
        }),
        Step::Handle => {
            if let Some(named) = &row.assignee
                && let Some(index) = phones.iter().position(|p| &p.actor.user == named)
            {
                return Some(index);
            }
            let team = row.team.clone()?;
            pick(
                covering(&|a: &Actor| a.team.as_ref().is_some_and(|t| t.as_str() == team)),
                rng,
            )
        }
        Step::Verify | Step::Rework => pick(
            covering(&|a: &Actor| matches!(a.role, Role::InformationSupervisor | Role::GridLeader)),
            rng,
        ),
        Step::Reply => Some(office.hotline),
    }
}

/// Takes `step` on the phone's copy of the case (synced just before); false when the
/// phone's copy does not allow it yet (it is tried again at the next tick).
fn act(
    phone: &mut Phone,
    plan: &mut Plan,
    step: Step,
    now: DateTime<Utc>,
    context: &wangge_sync_core::case::WorkflowContext<'_>,
) -> anyhow::Result<bool> {
    let Some(stored) = phone.store.documents().get(&plan.id) else {
        return Ok(false);
    };
    let mut case = CaseDocument::from_automerge(
        load_chunks(&stored.chunks).map_err(|e| anyhow!("case {}: {e}", plan.id))?,
    );
    let view = case.fold(context);
    let Some(team) = plan_team(&view, context) else {
        return Ok(false);
    };
    let (action, note) = match step {
        Step::Accept => (Action::Accept, None),
        Step::Void => (
            Action::Void,
            Some("重复上报，已有同一问题的案卷".to_owned()),
        ),
        Step::Register => (Action::Register, None),
        Step::Dispatch => (
            Action::Dispatch {
                team,
                assignee: None,
            },
            None,
        ),
        Step::Handle => (Action::Handle, Some("已现场处置完毕".to_owned())),
        Step::Verify => (Action::Verify, Some("现场核查，问题已解决".to_owned())),
        Step::Rework => (
            Action::Rework,
            Some("核查未通过，问题仍然存在，请返工".to_owned()),
        ),
        Step::Close => (Action::Close, None),
        Step::Reply => (
            Action::Reply {
                channel: ReplyChannel::Phone,
                satisfied: plan.rng.random_bool(0.9),
            },
            Some("已电话回访来电人，告知处理结果".to_owned()),
        ),
    };
    // A few minutes before the phone syncs, after the step it follows.
    let since = plan
        .seen
        .as_ref()
        .and_then(|s| s.2)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(plan.reported_at);
    let at = (now - TimeDelta::minutes(plan.rng.random_range(1..25)))
        .max(since + TimeDelta::minutes(1))
        .min(now);
    let entry = uuid::Builder::from_random_bytes(plan.rng.random())
        .into_uuid()
        .to_string();
    match case.act(context, &phone.actor, &entry, action, at, note) {
        Ok(()) => {}
        Err(wangge_sync_core::case::CaseError::Refused { .. }) => return Ok(false),
        Err(other) => return Err(anyhow!("case {}: {other}", plan.id)),
    }
    if step == Step::Rework {
        plan.reworked = true;
    }
    DeviceSession::record_local(&mut phone.store, &plan.id, DocKind::Case, case.automerge())
        .map_err(|e| anyhow!("storing {}: {e:?}", plan.id))?;
    Ok(true)
}

/// The catalogue's team for the case's category.
fn plan_team(
    view: &wangge_sync_core::case::CaseView,
    context: &wangge_sync_core::case::WorkflowContext<'_>,
) -> Option<TeamId> {
    let category = view.record.category?;
    Some(context.catalog.get(&category)?.team.clone())
}

/// The grid leader's (their community) or the shift lead's (the rest of the street)
/// reviews of the logs of the days before `today` not reviewed yet: most approved,
/// some rejected with a reason, some commented.
fn review_logs(
    phone: &mut Phone,
    today: NaiveDate,
    home: &str,
    community_only: bool,
    rng: &mut StdRng,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ids: Vec<String> = phone
        .store
        .documents()
        .keys()
        .filter(|id| wangge_server::patrol::log_owner(id).is_some_and(|(_, day)| day < today))
        .cloned()
        .collect();
    let mut wrote = false;
    for id in ids {
        let Some(stored) = phone.store.documents().get(&id) else {
            continue;
        };
        let mut log = PatrolLog::from_automerge(
            load_chunks(&stored.chunks).map_err(|e| anyhow!("{id}: {e}"))?,
        );
        let record = log.read();
        let in_home = record
            .checkins
            .iter()
            .any(|c| c.grid.is_some_and(|g| g.to_string().starts_with(home)));
        if community_only != in_home || !record.reviews.is_empty() {
            continue;
        }
        let (verdict, comment) = match rng.random_range(0..100) {
            0..10 => (Verdict::Reject, Some("有网格未巡到，请说明原因".to_owned())),
            10..18 => (Verdict::Comment, Some("注意重点路段早晚高峰".to_owned())),
            _ => (Verdict::Approve, None),
        };
        let review = Review {
            id: uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string(),
            at: now - TimeDelta::minutes(rng.random_range(1..20)),
            reviewer: phone.actor.clone(),
            verdict,
            comment,
        };
        log.review(&review)?;
        DeviceSession::record_local(&mut phone.store, &id, DocKind::PatrolLog, log.automerge())
            .map_err(|e| anyhow!("storing {id}: {e:?}"))?;
        wrote = true;
    }
    Ok(wrote)
}
