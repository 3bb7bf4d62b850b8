//! `wangge-bench memory`: the server's memory with a million cases stored (issue 5,
//! "Memory": documents are loaded on demand; RSS must stay ≤ 1 GB). The cases are
//! seeded straight into a fresh database — the rows the server itself writes for a
//! case (`documents`, its `catalogue_keys`, one compacted save in `document_chunks`,
//! the materialized `cases` row from `wangge_server::cases::case_row`,
//! `catalogue.seq`) — then the real
//! `wangge serve` runs on it while a supervisor lists and opens cases, two new phones
//! bootstrap, phones ingest and the overdue escalation runs; its `VmRSS` / `VmHWM`
//! are read from `/proc` after each step.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use wangge_server::cases::{case_row, server_actor};
use wangge_server::store::cases::CaseRow;
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::automation::Automation;
use wangge_sync_core::case::{
    Action, CaseDocument, NewCase, Photo, PhotoRole, Source, WorkflowContext,
};
use wangge_sync_core::catalog::{Catalog, CategoryCode, TeamId};
use wangge_sync_core::grid::GridIndex;
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::ownership::{Ownership, Posting};
use wangge_sync_core::role::{Actor, GridScope, Role};
use wangge_sync_core::sync::{DocKind, DocMeta};

use crate::http::Http;
use crate::ingest::{Shared, run_phone};
use crate::phone::{PASSWORD, Phone, now};
use crate::report::{Spread, default_out, machine, print_table, round3, write_json};
use crate::server::{Database, ServerProcess, Wangge, find_wangge, redact};
use crate::world::{Community, Rng, communities_with, spread};

/// The bound on the server's resident memory with 1M cases.
const GOAL_RSS_BYTES: f64 = 1e9;

/// Unit grids (spots) per community the cases are spread over.
const SPOTS_PER_COMMUNITY: usize = 64;

/// Cases a generator thread hands to the writer at a time.
const GENERATOR_BATCH: usize = 1000;

/// Cases per seeding transaction.
const CASES_PER_TRANSACTION: usize = 10_000;

/// Rows per `INSERT` (29 parameters a `cases` row: well within SQLite's 32,766).
const ROWS_PER_STATEMENT: usize = 500;

/// The most rows `GET /v1/cases` returns (`limit`).
const PAGE: usize = 500;

/// Options of `memory`.
#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Cases seeded into the database before the server starts.
    #[arg(long, default_value_t = 1_000_000)]
    cases: usize,
    /// Threads generating the case documents.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Share of the cases left dispatched past their due time (escalated by the
    /// server's overdue pass).
    #[arg(long, default_value_t = 0.005)]
    overdue_share: f64,
    /// The `wangge` binary (default: beside this tool).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `sqlite` (a fresh file, the default) or `postgres://USER@HOST:PORT/DB` (a fresh
    /// database is created beside DB and dropped afterwards).
    #[arg(long)]
    database: Option<String>,
    /// The district whose grids are cut, imported and reported in.
    #[arg(long, default_value = "410105")]
    district: String,
    /// Stop after seeding (the seeding rate and the database size only).
    #[arg(long)]
    seed_only: bool,
    /// Seconds a district supervisor lists cases (`GET /v1/cases`, every filter,
    /// page by page).
    #[arg(long, default_value_t = 60)]
    list_seconds: u64,
    /// Pages of 500 read per filter.
    #[arg(long, default_value_t = 20)]
    list_pages: usize,
    /// Cases opened one by one (`GET /v1/cases/{id}`), ids taken from the lists.
    #[arg(long, default_value_t = 3000)]
    shows: usize,
    /// The longest a new phone's first sync may take (the step records how far it got).
    #[arg(long, default_value_t = 1800)]
    bootstrap_seconds: u64,
    /// Phones that report and edit cases after the bootstraps.
    #[arg(long, default_value_t = 100)]
    ingest_phones: usize,
    /// Accounts those phones log in as, each posted to a community the seeding left
    /// empty (so their rounds are ingest, not a bootstrap of thousands of cases).
    #[arg(long, default_value_t = 10)]
    ingest_users: usize,
    /// Seconds the phones ingest.
    #[arg(long, default_value_t = 30)]
    ingest_seconds: u64,
    /// The server's `WANGGE_ESCALATE_SECONDS` (a pass escalates at most 500 cases).
    #[arg(long, default_value_t = 5)]
    escalate_seconds: u64,
    /// The longest to wait, at the end, for the overdue passes to leave no overdue
    /// case.
    #[arg(long, default_value_t = 600)]
    escalation_wait: u64,
    /// Results file (default `target/bench-results/memory.json`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// An account: its id, role, team and scope, and the actor its entries claim.
#[derive(Debug, Clone)]
struct Person {
    actor: Actor,
    scope: String,
}

impl Person {
    fn new(
        id: String,
        role: Role,
        team: Option<&str>,
        scope: &str,
        n: u64,
    ) -> anyhow::Result<Person> {
        let mut rng = Rng::new(0x6d65_6d6f_7279 ^ n.wrapping_mul(0x9E37_79B9));
        Ok(Person {
            actor: Actor {
                user: id,
                role,
                team: team
                    .map(TeamId::new)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("team: {e}"))?,
                scope: GridScope::from_str(scope).map_err(|e| anyhow::anyhow!("scope: {e}"))?,
                // The device its entries are written from (an Automerge actor id).
                device: format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
            },
            scope: scope.to_owned(),
        })
    }

    fn account(&self) -> (String, &'static str, Option<&'static str>, String) {
        let team = self.actor.team.as_ref().and_then(|t| {
            Catalog::builtin()
                .teams()
                .iter()
                .find(|known| known.id == *t)
                .map(|known| known.id.as_str())
        });
        (
            self.actor.user.clone(),
            self.actor.role.as_str(),
            team,
            self.scope.clone(),
        )
    }

    fn posting(&self) -> Posting {
        Posting {
            user: self.actor.user.clone(),
            role: self.actor.role,
            team: self.actor.team.clone(),
            scope: self.actor.scope.clone(),
        }
    }
}

/// Who acts on the seeded cases.
#[derive(Debug)]
struct People {
    /// An enforcement officer per seeded community (reports on patrol).
    officers: Vec<Person>,
    /// A grid leader per seeded community (verifies).
    leaders: Vec<Person>,
    hotline: Person,
    acceptor: Person,
    shift_lead: Person,
    dispatcher: Person,
    supervisor: Person,
    /// A handler per team, posted to the whole district.
    handlers: BTreeMap<String, Person>,
    /// The ingest phones' accounts, one per reserved community.
    ingest: Vec<Person>,
}

impl People {
    fn new(district: &str, seeded: &[Community], reserved: &[Community]) -> anyhow::Result<People> {
        let mut n = 0u64;
        let mut next = || {
            n += 1;
            n
        };
        let mut officers = Vec::new();
        let mut leaders = Vec::new();
        for (i, community) in seeded.iter().enumerate() {
            let code = community.code.to_string();
            officers.push(Person::new(
                format!("mem-officer-{i:03}"),
                Role::EnforcementOfficer,
                Some("enforcement"),
                &code,
                next(),
            )?);
            leaders.push(Person::new(
                format!("mem-leader-{i:03}"),
                Role::GridLeader,
                None,
                &code,
                next(),
            )?);
        }
        let mut handlers = BTreeMap::new();
        for team in Catalog::builtin().teams() {
            let id = team.id.as_str();
            let role = match id {
                "enforcement" => Role::EnforcementOfficer,
                "municipal_maintenance" => Role::MunicipalMaintenance,
                "sanitation" => Role::SanitationWorker,
                _ => Role::DepartmentHandler,
            };
            handlers.insert(
                id.to_owned(),
                Person::new(
                    format!("mem-handler-{id}"),
                    role,
                    Some(id),
                    district,
                    next(),
                )?,
            );
        }
        let ingest = reserved
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Person::new(
                    format!("mem-phone-user-{i:02}"),
                    Role::EnforcementOfficer,
                    Some("enforcement"),
                    &c.code.to_string(),
                    next(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(People {
            officers,
            leaders,
            hotline: Person::new(
                "mem-hotline".into(),
                Role::HotlineOperator,
                None,
                district,
                next(),
            )?,
            acceptor: Person::new(
                "mem-acceptor".into(),
                Role::Acceptor,
                None,
                district,
                next(),
            )?,
            shift_lead: Person::new(
                "mem-shift-lead".into(),
                Role::ShiftLead,
                None,
                district,
                next(),
            )?,
            dispatcher: Person::new(
                "mem-dispatcher".into(),
                Role::Dispatcher,
                None,
                district,
                next(),
            )?,
            supervisor: Person::new(
                "mem-supervisor".into(),
                Role::DistrictSupervisor,
                None,
                district,
                next(),
            )?,
            handlers,
            ingest,
        })
    }

    fn all(&self) -> impl Iterator<Item = &Person> + '_ {
        self.officers
            .iter()
            .chain(&self.leaders)
            .chain([
                &self.hotline,
                &self.acceptor,
                &self.shift_lead,
                &self.dispatcher,
                &self.supervisor,
            ])
            .chain(self.handlers.values())
            .chain(&self.ingest)
    }
}

/// How far a seeded case gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Reported,
    Accepted,
    Registered,
    Dispatched,
    Handled,
    Closed,
    Voided,
    /// Dispatched days ago and never handled: past its due time.
    Overdue,
}

/// One seeded case: its `documents`, `document_chunks` and `cases` rows.
#[derive(Debug)]
struct Seeded {
    id: String,
    heads: Vec<u8>,
    grids: String,
    owner: Option<String>,
    assignees: String,
    /// Its catalogue keys (migration 0007).
    keys: Vec<String>,
    updated_at: i64,
    save: Vec<u8>,
    row: CaseRow,
    changes: usize,
}

/// What the generator threads share.
#[derive(Debug)]
struct World {
    calendar: WorkCalendar,
    ownership: Ownership,
    grids: GridIndex,
    postings: Vec<Posting>,
    people: People,
    communities: Vec<Community>,
    categories: Vec<CategoryCode>,
    now: DateTime<Utc>,
    overdue_share: f64,
}

const DESCRIPTIONS: [&str; 8] = [
    "路边暴露垃圾一堆，影响通行",
    "井盖缺失，存在安全隐患",
    "占道经营，堵塞人行道",
    "绿化带内堆放建筑材料",
    "路灯不亮，夜间行人不便",
    "小广告乱贴乱画，影响市容",
    "道路破损积水，车辆绕行",
    "共享单车乱停放，占用盲道",
];

const ROADS: [&str; 8] = [
    "花园路",
    "经三路",
    "农业路",
    "金水路",
    "纬五路",
    "东风路",
    "黄河路",
    "丰产路",
];

fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn heads_bytes(doc: &CaseDocument) -> Vec<u8> {
    let mut heads = doc.automerge().get_heads();
    heads.sort();
    heads.dedup();
    heads.iter().flat_map(|h| h.0).collect()
}

/// A random span of `lo..hi` seconds.
fn secs(rng: &mut Rng, lo: u64, hi: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(lo + rng.next_u64() % (hi - lo).max(1)).unwrap_or(0))
}

/// A case's clock while it is seeded: each edit a random gap after the last.
struct Flow<'a> {
    context: WorkflowContext<'a>,
    at: DateTime<Utc>,
    gap: (u64, u64),
    changes: usize,
}

impl Flow<'_> {
    fn next(&mut self, rng: &mut Rng) -> DateTime<Utc> {
        self.at += secs(rng, self.gap.0, self.gap.1);
        self.at
    }

    fn act(
        &mut self,
        case: &mut CaseDocument,
        rng: &mut Rng,
        person: &Person,
        action: Action,
        note: Option<&str>,
    ) -> anyhow::Result<()> {
        let when = self.next(rng);
        let name = action.as_str();
        case.act(
            &self.context,
            &person.actor,
            &uuid(),
            action,
            when,
            note.map(str::to_owned),
        )
        .with_context(|| format!("{name} by {}", person.actor.user))?;
        self.changes += 1;
        Ok(())
    }

    fn photo(
        &mut self,
        case: &mut CaseDocument,
        rng: &mut Rng,
        person: &Person,
        role: PhotoRole,
        position: wangge_sync_core::case::Position,
    ) -> anyhow::Result<()> {
        let when = self.next(rng);
        let photo = Photo {
            hash: rng.hex64(),
            role,
            taken_at: Some(when),
            position: Some(position),
            added_by: person.actor.user.clone(),
            added_at: when,
        };
        case.add_photo(&person.actor, &photo).context("a photo")?;
        self.changes += 1;
        Ok(())
    }
}

impl World {
    fn context(&self) -> WorkflowContext<'_> {
        WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &self.calendar,
        }
    }

    /// One case, reported and taken as far as its fate says by the people who would.
    fn case(&self, rng: &mut Rng) -> anyhow::Result<Seeded> {
        let context = self.context();
        let c = rng.below(self.communities.len());
        let community = &self.communities[c];
        let spot = community.spots[rng.below(community.spots.len())];
        let category = self.categories[rng.below(self.categories.len())];
        let fate = if (rng.below(1_000_000) as f64) < self.overdue_share * 1e6 {
            Fate::Overdue
        } else {
            match rng.below(1000) {
                0..700 => Fate::Closed,
                700..730 => Fate::Voided,
                730..790 => Fate::Handled,
                790..870 => Fate::Dispatched,
                870..910 => Fate::Registered,
                910..940 => Fate::Accepted,
                _ => Fate::Reported,
            }
        };
        // Closed cases over the past year; overdue ones dispatched days ago; the other
        // open ones in the last 40 minutes (no due time is shorter than an hour), so
        // only the `Overdue` share is past due.
        let (start, gap) = match fate {
            Fate::Closed | Fate::Voided => (secs(rng, 3 * 86_400, 365 * 86_400), (600, 6 * 3600)),
            Fate::Overdue => (secs(rng, 3 * 86_400, 30 * 86_400), (60, 1800)),
            _ => (secs(rng, 1800, 2400), (5, 60)),
        };
        let mut flow = Flow {
            context,
            at: self.now - start,
            gap,
            changes: 0,
        };
        let hotline = rng.below(5) == 0;
        let reporter = if hotline {
            &self.people.hotline
        } else {
            &self.people.officers[c]
        };
        let id = uuid();
        let new = NewCase {
            id: id.clone(),
            category,
            location: spot.position,
            grid: Some(spot.grid),
            address: format!(
                "金水区 {} {} 号",
                ROADS[rng.below(ROADS.len())],
                rng.below(300) + 1
            ),
            description: DESCRIPTIONS[rng.below(DESCRIPTIONS.len())].to_owned(),
            source: if hotline {
                Source::Hotline
            } else {
                Source::Patrol
            },
            source_ref: hotline.then(|| format!("12319-{}", rng.below(10_000_000))),
            caller: None,
        };
        let mut case = CaseDocument::create(&new, &reporter.actor, &uuid(), flow.at)
            .context("creating a case")?;
        flow.changes += 1;
        if !hotline && rng.below(10) < 6 {
            flow.photo(&mut case, rng, reporter, PhotoRole::Before, spot.position)?;
        }
        // What the server does when the report arrives (routing, and for the urgent
        // categories accept + register + dispatch).
        let postings = |_grid| self.postings.clone();
        let automation = Automation {
            context,
            ownership: &self.ownership,
            grids: &self.grids,
            postings: &postings,
        };
        let when = flow.next(rng);
        let done = automation
            .act(&mut case, &[], &server_actor(), when)
            .context("the server's automation")?;
        flow.changes += usize::from(done.wrote());
        let team = match &done.routing {
            Some(routing) => routing.team.clone(),
            None => TeamId::new("enforcement").map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        if rng.below(10) < 3 {
            flow.act(
                &mut case,
                rng,
                reporter,
                Action::Comment,
                Some("现场已拍照，请尽快处理"),
            )?;
        }
        // Still `reported` unless the server dispatched it (it acts on nothing else).
        let queued = done.dispatched.is_none();
        let people = &self.people;
        'flow: {
            if fate == Fate::Reported {
                break 'flow;
            }
            if fate == Fate::Voided {
                if queued {
                    flow.act(
                        &mut case,
                        rng,
                        &people.acceptor,
                        Action::Void,
                        Some("重复上报"),
                    )?;
                }
                break 'flow;
            }
            if queued {
                flow.act(&mut case, rng, &people.acceptor, Action::Accept, None)?;
                if fate == Fate::Accepted {
                    break 'flow;
                }
                flow.act(&mut case, rng, &people.shift_lead, Action::Register, None)?;
                if fate == Fate::Registered {
                    break 'flow;
                }
                let assignee = (rng.below(2) == 0)
                    .then(|| {
                        people
                            .handlers
                            .get(team.as_str())
                            .map(|h| h.actor.user.clone())
                    })
                    .flatten();
                let dispatch = Action::Dispatch {
                    team: team.clone(),
                    assignee,
                };
                flow.act(&mut case, rng, &people.dispatcher, dispatch, None)?;
            }
            if matches!(
                fate,
                Fate::Dispatched | Fate::Overdue | Fate::Accepted | Fate::Registered
            ) {
                break 'flow;
            }
            let view = case.fold(&context);
            let Some(assigned) = view.assignment.as_ref().map(|a| a.team.clone()) else {
                break 'flow;
            };
            let handler = people
                .handlers
                .get(assigned.as_str())
                .with_context(|| format!("no handler for team {assigned}"))?;
            flow.photo(&mut case, rng, handler, PhotoRole::After, spot.position)?;
            flow.act(&mut case, rng, handler, Action::Handle, Some("已处置完毕"))?;
            if fate == Fate::Handled {
                break 'flow;
            }
            flow.act(&mut case, rng, &people.leaders[c], Action::Verify, None)?;
            flow.act(&mut case, rng, &people.shift_lead, Action::Close, None)?;
        }
        let (at, changes) = (flow.at, flow.changes);
        let view = case.fold(&context);
        let meta = DocMeta::of_case(&view);
        let updated_at = at.timestamp_millis();
        let row = case_row(&id, &view, updated_at);
        Ok(Seeded {
            heads: heads_bytes(&case),
            grids: meta
                .grids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            owner: meta.owner.clone(),
            assignees: meta.assignees.join(","),
            keys: meta.catalogue_keys(DocKind::Case),
            updated_at,
            save: case.save(),
            row,
            id,
            changes,
        })
    }
}

/// The seeding's connection: SQLite (the server's WAL mode, without waiting for the
/// disk: the seeding is not what is measured) or PostgreSQL.
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Pool {
    async fn open(url: &str) -> anyhow::Result<Pool> {
        if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                .pragma("cache_size", "-262144")
                .foreign_keys(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Ok(Pool::Sqlite(pool))
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            Ok(Pool::Postgres(pool))
        }
    }
}

/// Writes `rows` (seq from `first_seq` on) in one transaction.
macro_rules! write_rows {
    ($pool:expr, $db:ident, $rows:expr, $first_seq:expr) => {{
        let mut tx = $pool.begin().await?;
        for (c, chunk) in $rows.chunks(ROWS_PER_STATEMENT).enumerate() {
            let base = $first_seq + (c * ROWS_PER_STATEMENT) as i64;
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO documents (id, kind, seq, heads, grids, owner, assignees, updated_at) ",
            );
            q.push_values(chunk.iter().enumerate(), |mut b, (i, s)| {
                b.push_bind(s.id.as_str())
                    .push_bind("case")
                    .push_bind(base + i as i64)
                    .push_bind(s.heads.as_slice())
                    .push_bind(s.grids.as_str())
                    .push_bind(s.owner.as_deref())
                    .push_bind(s.assignees.as_str())
                    .push_bind(s.updated_at);
            });
            q.build().execute(&mut *tx).await?;
            let keys = chunk.iter().enumerate().flat_map(|(i, s)| {
                s.keys.iter().map(move |k| (k.as_str(), s.id.as_str(), base + i as i64))
            });
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO catalogue_keys (scope_key, doc_id, seq) ",
            );
            q.push_values(keys, |mut b, (key, id, seq)| {
                b.push_bind(key).push_bind(id).push_bind(seq);
            });
            q.build().execute(&mut *tx).await?;
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO document_chunks (doc_id, n, bytes) ",
            );
            q.push_values(chunk.iter(), |mut b, s| {
                b.push_bind(s.id.as_str())
                    .push_bind(1_i64)
                    .push_bind(s.save.as_slice());
            });
            q.build().execute(&mut *tx).await?;
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO cases (id, status, kind, category, source, district, street, community,
                     grid, lon, lat, address, summary, reporter, team, assignee, level, reported_at,
                     step, step_started_at, due_at, closed_at, dispatches, reworks, returns,
                     escalations, ignored, steps, updated_at) ",
            );
            q.push_values(chunk.iter(), |mut b, s| {
                let r = &s.row;
                b.push_bind(r.id.as_str())
                    .push_bind(r.status.as_deref())
                    .push_bind(r.kind.as_deref())
                    .push_bind(r.category.as_deref())
                    .push_bind(r.source.as_deref())
                    .push_bind(r.district.as_deref())
                    .push_bind(r.street.as_deref())
                    .push_bind(r.community.as_deref())
                    .push_bind(r.grid.as_deref())
                    .push_bind(r.lon)
                    .push_bind(r.lat)
                    .push_bind(r.address.as_str())
                    .push_bind(r.summary.as_str())
                    .push_bind(r.reporter.as_deref())
                    .push_bind(r.team.as_deref())
                    .push_bind(r.assignee.as_deref())
                    .push_bind(r.level.as_str())
                    .push_bind(r.reported_at)
                    .push_bind(r.step.as_deref())
                    .push_bind(r.step_started_at)
                    .push_bind(r.due_at)
                    .push_bind(r.closed_at)
                    .push_bind(r.dispatches)
                    .push_bind(r.reworks)
                    .push_bind(r.returns)
                    .push_bind(r.escalations)
                    .push_bind(r.ignored)
                    .push_bind(r.steps.as_str())
                    .push_bind(r.updated_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }};
}

impl Pool {
    async fn write(&self, rows: &[Seeded], first_seq: i64) -> anyhow::Result<()> {
        match self {
            Pool::Sqlite(pool) => write_rows!(pool, Sqlite, rows, first_seq),
            Pool::Postgres(pool) => write_rows!(pool, Postgres, rows, first_seq),
        }
        Ok(())
    }

    async fn finish(
        &self,
        last_seq: i64,
        now_ms: i64,
        community: &str,
    ) -> anyhow::Result<Finished> {
        macro_rules! finish {
            ($pool:expr) => {{
                sqlx::query("UPDATE catalogue SET seq = $1 WHERE id = 1")
                    .bind(last_seq)
                    .execute($pool)
                    .await?;
                let statuses: Vec<(Option<String>, i64)> = sqlx::query_as(
                    "SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY COUNT(*) DESC",
                )
                .fetch_all($pool)
                .await?;
                let (overdue,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM cases WHERE status IN ('registered', 'dispatched')
                     AND due_at < $1 AND level <> 'city'",
                )
                .bind(now_ms)
                .fetch_one($pool)
                .await?;
                let (in_community,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM cases WHERE community = $1")
                        .bind(community)
                        .fetch_one($pool)
                        .await?;
                let total: i64 = statuses.iter().map(|(_, n)| n).sum();
                (statuses, overdue, (in_community, total))
            }};
        }
        let (statuses, overdue, in_community, version) = match self {
            Pool::Sqlite(pool) => {
                let (statuses, overdue, in_community) = finish!(pool);
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await?;
                let (version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
                    .fetch_one(pool)
                    .await?;
                (statuses, overdue, in_community, format!("SQLite {version}"))
            }
            Pool::Postgres(pool) => {
                let (statuses, overdue, in_community) = finish!(pool);
                let (version,): (String,) = sqlx::query_as("SHOW server_version")
                    .fetch_one(pool)
                    .await?;
                (
                    statuses,
                    overdue,
                    in_community,
                    format!("PostgreSQL {version}"),
                )
            }
        };
        Ok(Finished {
            statuses: statuses
                .into_iter()
                .map(|(s, n)| (s.unwrap_or_else(|| "(none)".into()), n))
                .collect(),
            overdue,
            in_community: usize::try_from(in_community.0).unwrap_or(0),
            total: usize::try_from(in_community.1).unwrap_or(0),
            version,
        })
    }

    /// Cases already stored (a resumed seeding) and the catalogue's last position.
    async fn stored(&self) -> anyhow::Result<(i64, i64)> {
        macro_rules! stored {
            ($pool:expr) => {{
                let (cases,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases")
                    .fetch_one($pool)
                    .await?;
                let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM documents")
                    .fetch_one($pool)
                    .await?;
                (cases, seq)
            }};
        }
        Ok(match self {
            Pool::Sqlite(pool) => stored!(pool),
            Pool::Postgres(pool) => stored!(pool),
        })
    }

    async fn bytes(&self) -> anyhow::Result<Option<u64>> {
        match self {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(pool) => {
                let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await?;
                Ok(u64::try_from(size).ok())
            }
        }
    }

    async fn close(self) {
        match self {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

#[derive(Debug)]
struct Finished {
    statuses: Vec<(String, i64)>,
    overdue: i64,
    /// Cases in the community whose officer's phone bootstraps.
    in_community: usize,
    /// Cases stored (after a resumed run, the catalogue's position is further: the
    /// earlier run's escalations and phones wrote too).
    total: usize,
    version: String,
}

/// The database's size on disk: the SQLite file and its WAL, or PostgreSQL's
/// `pg_database_size`.
async fn database_bytes(database: &Database) -> anyhow::Result<u64> {
    if let Some(path) = database.url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
        return Ok(size(path.to_owned()) + size(format!("{path}-wal")));
    }
    let pool = Pool::open(&database.url).await?;
    let bytes = pool.bytes().await?.unwrap_or(0);
    pool.close().await;
    Ok(bytes)
}

/// What the seeding did.
#[derive(Debug)]
struct Seeding {
    seconds: f64,
    changes: usize,
    document_bytes: u64,
    finished: Finished,
}

/// Generates `count` cases on `threads` threads and writes them in big transactions,
/// at catalogue positions after `before` (the cases already stored).
async fn seed(
    world: Arc<World>,
    pool: &Pool,
    count: usize,
    before: i64,
    threads: usize,
    community: &str,
) -> anyhow::Result<Seeding> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<Vec<Seeded>>>(8);
    let threads = threads.max(1);
    let producer = {
        let world = Arc::clone(&world);
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                for t in 0..threads {
                    let tx = tx.clone();
                    let world = &*world;
                    let share = count / threads + usize::from(t < count % threads);
                    scope.spawn(move || {
                        let mut rng = Rng::new(0x5eed_0000 + t as u64 + (before as u64) * 16);
                        let mut left = share;
                        while left > 0 {
                            let n = left.min(GENERATOR_BATCH);
                            let batch: anyhow::Result<Vec<Seeded>> =
                                (0..n).map(|_| world.case(&mut rng)).collect();
                            let failed = batch.is_err();
                            if tx.blocking_send(batch).is_err() || failed {
                                return;
                            }
                            left -= n;
                        }
                    });
                }
            });
        })
    };
    let mut pending: Vec<Seeded> = Vec::with_capacity(CASES_PER_TRANSACTION + GENERATOR_BATCH);
    let mut written = 0usize;
    let mut changes = 0usize;
    let mut document_bytes = 0u64;
    let mut last_print = Instant::now();
    while let Some(batch) = rx.recv().await {
        let batch = batch.context("generating cases")?;
        for s in &batch {
            changes += s.changes;
            document_bytes += s.save.len() as u64;
        }
        pending.extend(batch);
        if pending.len() >= CASES_PER_TRANSACTION {
            pool.write(&pending, before + written as i64 + 1).await?;
            written += pending.len();
            pending.clear();
        }
        if last_print.elapsed() >= Duration::from_secs(15) {
            last_print = Instant::now();
            let rate = written as f64 / started.elapsed().as_secs_f64();
            println!(
                "  {written} / {count} cases seeded, {rate:.0}/s, about {:.0} s left",
                (count - written) as f64 / rate.max(1.0)
            );
        }
    }
    if !pending.is_empty() {
        pool.write(&pending, before + written as i64 + 1).await?;
        written += pending.len();
    }
    producer.await.context("the generator threads")?;
    if written != count {
        bail!("{written} of {count} cases were generated");
    }
    let finished = pool
        .finish(before + written as i64, now().timestamp_millis(), community)
        .await?;
    Ok(Seeding {
        seconds: started.elapsed().as_secs_f64(),
        changes,
        document_bytes,
        finished,
    })
}

/// The server's memory after a step.
#[derive(Debug)]
struct Step {
    name: &'static str,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_seconds: f64,
    at_seconds: f64,
    escalated: usize,
    detail: String,
    json: Value,
}

fn step(
    server: &ServerProcess,
    started: Instant,
    name: &'static str,
    detail: String,
    json: Value,
) -> anyhow::Result<Step> {
    let step = Step {
        name,
        rss_kib: server.memory_kib("VmRSS")?,
        hwm_kib: server.memory_kib("VmHWM")?,
        cpu_seconds: server.cpu_seconds()?,
        at_seconds: started.elapsed().as_secs_f64(),
        escalated: server.log_count("overdue case escalated"),
        detail,
        json,
    };
    println!(
        "  [{:>6.1} s] {name}: RSS {:.1} MiB, peak {:.1} MiB; {}",
        step.at_seconds,
        step.rss_kib as f64 / 1024.0,
        step.hwm_kib as f64 / 1024.0,
        step.detail
    );
    Ok(step)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A GET with the caller's token; the body as JSON, or an error naming the answer.
async fn get(http: &mut Http, token: &str, path: &str) -> anyhow::Result<(Value, Duration)> {
    let bearer = format!("Bearer {token}");
    let started = Instant::now();
    let response = http
        .request("GET", path, &[("Authorization", &bearer)], b"")
        .await?;
    let took = started.elapsed();
    if response.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            response.status,
            response.error_code()
        );
    }
    Ok((response.json(), took))
}

/// The `GET /v1/cases` filters the supervisor pages through: every parameter, on
/// the areas and categories the cases are in.
fn list_filters(world: &World, district: &str, now: DateTime<Utc>) -> Vec<String> {
    let mut filters: Vec<String> = vec![String::new(), format!("grid={district}")];
    for status in [
        "reported",
        "accepted",
        "registered",
        "dispatched",
        "handled",
        "closed",
        "voided",
        "dispatched,handled",
    ] {
        filters.push(format!("status={status}"));
    }
    filters.push("overdue=true".into());
    filters.push("overdue=true&status=registered,dispatched".into());
    for category in ["C", "E", "C01", "E01", "E0102", "C0101"] {
        filters.push(format!("category={category}"));
    }
    filters.push("source=patrol".into());
    filters.push("source=hotline".into());
    for team in ["enforcement", "sanitation", "municipal_maintenance"] {
        filters.push(format!("team={team}"));
    }
    filters.push("assignee=mem-handler-enforcement".into());
    let day = |d: i64| {
        (now - TimeDelta::days(d))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    filters.push(format!("from={}", day(30)));
    filters.push(format!("from={}&to={}", day(200), day(170)));
    let communities = &world.communities;
    for i in [0, communities.len() / 3, 2 * communities.len() / 3] {
        if let Some(c) = communities.get(i) {
            let code = c.code.to_string();
            filters.push(format!("grid={}", &code[..9]));
            filters.push(format!("grid={code}"));
            if let Some(spot) = c.spots.first() {
                filters.push(format!("grid={}", spot.grid));
            }
            filters.push(format!("grid={}&status=closed&category=E", &code[..9]));
        }
    }
    filters
}

/// Runs the memory benchmark.
pub async fn run(args: MemoryArgs) -> anyhow::Result<()> {
    if args.cases == 0 {
        bail!("--cases must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.overdue_share) {
        bail!("--overdue-share must be between 0 and 1");
    }
    let wangge = Wangge {
        bin: find_wangge(args.server_bin.as_deref())?,
    };
    let database = Database::create(args.database.as_deref())?;
    println!(
        "memory: {} cases; {} database {}",
        args.cases,
        database.backend(),
        redact(&database.url)
    );

    // The database, the grids, the accounts — unless a seeding into this database
    // (`--database sqlite://FILE`) was interrupted: then it goes on where it stopped.
    let setup = Instant::now();
    wangge
        .run(&["migrate", "--database", &database.url], "")
        .await
        .context("migrating")?;
    let pool = Pool::open(&database.url)
        .await
        .with_context(|| format!("opening {}", redact(&database.url)))?;
    let (stored, last_seq) = pool.stored().await?;
    let stored = usize::try_from(stored).unwrap_or(0);
    let grid_file = database.dir.path().join("grids.geojson");
    if stored > 0 {
        println!("  {stored} cases already stored: resuming the seeding");
        wangge
            .cut_grids(&args.district, &grid_file)
            .await
            .context("cutting the grids")?;
    } else {
        wangge
            .grids(&args.district, &grid_file, &database.url)
            .await
            .context("cutting and importing the grids")?;
    }
    let all = communities_with(&grid_file, SPOTS_PER_COMMUNITY)?;
    let reserved = spread(
        &all,
        args.ingest_users
            .clamp(1, all.len().saturating_sub(1).max(1)),
    )?;
    let reserved_codes: HashSet<_> = reserved.iter().map(|c| c.code).collect();
    let seeded: Vec<Community> = all
        .iter()
        .filter(|c| !reserved_codes.contains(&c.code))
        .cloned()
        .collect();
    if seeded.is_empty() {
        bail!("no community left to seed cases in");
    }
    let people = People::new(&args.district, &seeded, &reserved)?;
    let accounts: Vec<_> = people.all().map(Person::account).collect();
    if stored == 0 {
        wangge
            .add_users(&database.url, &accounts, PASSWORD)
            .await
            .context("creating the accounts")?;
    }
    let spots: usize = seeded.iter().map(|c| c.spots.len()).sum();
    println!(
        "  {} communities ({} unit grids) to seed, {} kept empty for the ingest phones; {} accounts ({:.1} s)",
        seeded.len(),
        spots,
        reserved.len(),
        accounts.len(),
        setup.elapsed().as_secs_f64()
    );

    // The seeding.
    let bytes =
        std::fs::read(&grid_file).with_context(|| format!("reading {}", grid_file.display()))?;
    let set = read_grids(&bytes).with_context(|| format!("parsing {}", grid_file.display()))?;
    let grids = GridIndex::build(set).context("indexing the grids")?;
    let catalog = Catalog::builtin();
    let world = Arc::new(World {
        calendar: WorkCalendar::standard(),
        ownership: Ownership::builtin(catalog).context("the built-in ownership rules")?,
        grids,
        postings: people.all().map(Person::posting).collect(),
        categories: catalog.categories().map(|c| c.code).collect(),
        people,
        communities: seeded,
        now: now(),
        overdue_share: args.overdue_share,
    });
    let to_seed = args.cases.saturating_sub(stored);
    println!(
        "  seeding {to_seed} cases on {} threads ({} categories)",
        args.threads,
        world.categories.len()
    );
    let first_code = world.communities[0].code.to_string();
    let seeding = seed(
        Arc::clone(&world),
        &pool,
        to_seed,
        last_seq,
        args.threads,
        &first_code,
    )
    .await?;
    pool.close().await;
    let seeded_bytes = database_bytes(&database).await?;
    let rate = to_seed as f64 / seeding.seconds;
    let total = seeding.finished.total;
    println!(
        "  seeded {to_seed} cases ({} changes) in {:.1} s ({rate:.0} cases/s); {total} stored; database {:.1} MiB; {} overdue",
        seeding.changes,
        seeding.seconds,
        seeded_bytes as f64 / 1048576.0,
        seeding.finished.overdue
    );
    let statuses = seeding
        .finished
        .statuses
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rows: Vec<(String, String)> = vec![
        (
            "cases stored".to_owned(),
            format!("{total} in {} communities", world.communities.len()),
        ),
        (
            "cases seeded by this run".to_owned(),
            format!(
                "{to_seed} ({} changes; saves {:.1} MiB, {:.0} B a case)",
                seeding.changes,
                seeding.document_bytes as f64 / 1048576.0,
                seeding.document_bytes as f64 / to_seed.max(1) as f64
            ),
        ),
        ("statuses".to_owned(), statuses.clone()),
        (
            "seeding (generate + insert)".to_owned(),
            format!(
                "{:.1} s, {rate:.0} cases/s on {} generator threads",
                seeding.seconds, args.threads
            ),
        ),
        (
            "database after seeding".to_owned(),
            format!(
                "{:.1} MiB ({})",
                seeded_bytes as f64 / 1048576.0,
                seeding.finished.version
            ),
        ),
        (
            "overdue cases at start".to_owned(),
            seeding.finished.overdue.to_string(),
        ),
    ];
    let mut result = json!({
        "bench": "memory",
        "machine": machine(&wangge.bin),
        "database": database.backend(),
        "database_version": seeding.finished.version,
        "cases": total,
        "cases_seeded_by_this_run": to_seed,
        "cases_stored_before": stored,
        "communities": world.communities.len(),
        "changes": seeding.changes,
        "document_bytes": seeding.document_bytes,
        "statuses": seeding.finished.statuses.iter().map(|(s, n)| json!({ "status": s, "count": n })).collect::<Vec<_>>(),
        "seeding_seconds": round3(seeding.seconds),
        "seeding_cases_per_second": round3(rate),
        "generator_threads": args.threads,
        "database_bytes_after_seeding": seeded_bytes,
        "overdue_at_start": seeding.finished.overdue,
    });
    if args.seed_only {
        print_table(
            &format!("wangge-bench memory ({}, seeding only)", database.backend()),
            &rows,
        );
        let out = args.out.clone().unwrap_or_else(|| default_out("memory"));
        return write_json(&out, &result);
    }

    // The server.
    let log = database.dir.path().join("server.log");
    let escalate = args.escalate_seconds.to_string();
    let start_clock = Instant::now();
    let mut server = wangge
        .serve(
            &database.url,
            &log,
            &[
                ("WANGGE_ACCESS_TOKEN_SECONDS", "7200"),
                ("WANGGE_ESCALATE_SECONDS", escalate.as_str()),
                // The escalations are counted from the log.
                ("WANGGE_LOG", "warn,wangge_server::escalation=info"),
            ],
        )
        .await?;
    let startup = start_clock.elapsed();
    println!(
        "  server pid {} on {} (started in {:.1} s)",
        server.pid,
        server.addr,
        startup.as_secs_f64()
    );
    let started = Instant::now();
    let mut steps = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    steps.push(step(
        &server,
        started,
        "started",
        format!("listening after {:.1} s", startup.as_secs_f64()),
        json!({ "startup_seconds": round3(startup.as_secs_f64()) }),
    )?);

    // A district supervisor lists and opens cases.
    let console = Phone::login(
        server.addr,
        &world.people.supervisor.actor.user,
        "memory console",
        3,
    )
    .await
    .context("the supervisor's login")?;
    let token = console.token.clone();
    let mut http = console.http;
    let filters = list_filters(&world, &args.district, now());
    let deadline = Instant::now() + Duration::from_secs(args.list_seconds);
    let mut list_latencies = Vec::new();
    let mut listed_rows = 0usize;
    let mut ids: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut filters_read = 0usize;
    let mut first_pages = Vec::new();
    // Page by page across the filters: the first page of every filter (even past
    // the deadline), then the second of each, … until the deadline.
    let mut exhausted = vec![false; filters.len()];
    'listing: for page in 0..args.list_pages {
        for (f, filter) in filters.iter().enumerate() {
            if exhausted[f] {
                continue;
            }
            if page > 0 && Instant::now() >= deadline {
                break 'listing;
            }
            let sep = if filter.is_empty() { "" } else { "&" };
            let path = format!("/v1/cases?{filter}{sep}limit={PAGE}&offset={}", page * PAGE);
            let (body, took) = get(&mut http, &token, &path).await?;
            list_latencies.push(took);
            if page == 0 {
                filters_read += 1;
                first_pages
                    .push(json!({ "filter": filter, "ms": round3(took.as_secs_f64() * 1e3) }));
            }
            let cases = body["cases"].as_array().map_or(&[][..], Vec::as_slice);
            listed_rows += cases.len();
            for case in cases {
                if let Some(id) = case["id"].as_str()
                    && ids.len() < 200_000
                    && seen.insert(id.to_owned())
                {
                    ids.push(id.to_owned());
                }
            }
            exhausted[f] = cases.len() < PAGE;
        }
    }
    let list_spread = Spread::of(&list_latencies);
    server.check_alive()?;
    steps.push(step(
        &server,
        started,
        "listed",
        format!(
            "{} GET /v1/cases ({filters_read} of {} filters, {listed_rows} rows), {}",
            list_latencies.len(),
            filters.len(),
            list_spread.text()
        ),
        json!({ "requests": list_latencies.len(), "filters": filters.len(), "filters_read": filters_read,
                "rows": listed_rows, "latency": list_spread.json(), "first_pages": first_pages }),
    )?);
    let mut rng = Rng::new(42);
    let mut show_latencies = Vec::new();
    for _ in 0..args.shows.min(ids.len()) {
        let i = rng.below(ids.len());
        let id = ids.swap_remove(i);
        let (body, took) = get(&mut http, &token, &format!("/v1/cases/{id}")).await?;
        if body["case"]["id"].as_str() != Some(id.as_str()) {
            bail!("GET /v1/cases/{id} answered another case");
        }
        show_latencies.push(took);
    }
    let show_spread = Spread::of(&show_latencies);
    server.check_alive()?;
    steps.push(step(
        &server,
        started,
        "opened",
        format!(
            "{} GET /v1/cases/{{id}}, {}",
            show_latencies.len(),
            show_spread.text()
        ),
        json!({ "requests": show_latencies.len(), "latency": show_spread.json() }),
    )?);

    // Two new phones' first syncs.
    let addr = server.addr;
    let bootstrap = |name: &'static str, user: String, expected: usize, seed: u64| {
        let limit = Duration::from_secs(args.bootstrap_seconds);
        async move {
            let mut phone = Phone::login(addr, &user, &format!("memory {name}"), seed).await?;
            let begun = Instant::now();
            let outcome = phone
                .sync_bounded(50, None, usize::MAX, Some(begun + limit))
                .await?;
            let took = begun.elapsed().as_secs_f64();
            let documents = phone.documents();
            let detail = format!(
                "{name} ({user}): {documents} documents (≥ {expected} expected) in {} requests, {:.1} MiB of replies, {took:.1} s{}",
                outcome.latencies.len(),
                outcome.reply_bytes as f64 / 1048576.0,
                if outcome.settled {
                    ""
                } else {
                    " — NOT settled (--bootstrap-seconds)"
                }
            );
            let json = json!({
                "user": user, "documents": documents, "expected_at_least": expected,
                "requests": outcome.latencies.len(), "reply_bytes": outcome.reply_bytes,
                "seconds": round3(took), "settled": outcome.settled,
                "errors": outcome.errors.len(), "latency": Spread::of(&outcome.latencies).json(),
            });
            Ok::<_, anyhow::Error>((detail, json))
        }
    };
    let (detail, json) = bootstrap(
        "community phone",
        world.people.officers[0].actor.user.clone(),
        seeding.finished.in_community,
        5,
    )
    .await
    .context("the community phone's first sync")?;
    server.check_alive()?;
    steps.push(step(
        &server,
        started,
        "community phone bootstrapped",
        detail,
        json,
    )?);
    let (detail, json) = bootstrap(
        "supervisor phone",
        world.people.supervisor.actor.user.clone(),
        total,
        6,
    )
    .await
    .context("the supervisor phone's first sync")?;
    server.check_alive()?;
    steps.push(step(
        &server,
        started,
        "supervisor phone bootstrapped",
        detail,
        json,
    )?);

    // Phones report and edit for a while.
    let ingest_users: Vec<(String, Arc<Community>)> = world
        .people
        .ingest
        .iter()
        .zip(&reserved)
        .map(|(p, c)| (p.actor.user.clone(), Arc::new(c.clone())))
        .collect();
    let mut phones = Vec::new();
    let mut logins = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < args.ingest_phones || !logins.is_empty() {
        while next < args.ingest_phones && logins.len() < 4 {
            let (user, _) = &ingest_users[next % ingest_users.len()];
            let (addr, user, i) = (server.addr, user.clone(), next);
            logins.spawn(async move {
                (
                    i,
                    Phone::login(addr, &user, &format!("memory phone {i}"), 100 + i as u64).await,
                )
            });
            next += 1;
        }
        if let Some(joined) = logins.join_next().await {
            let (i, phone) = joined.context("login task")?;
            phones.push((i, phone.with_context(|| format!("logging phone {i} in"))?));
        }
    }
    let shared = Arc::new(Shared::default());
    let mut tasks = tokio::task::JoinSet::new();
    let ingest_started = Instant::now();
    for (i, phone) in phones {
        let community = Arc::clone(&ingest_users[i % ingest_users.len()].1);
        let shared = Arc::clone(&shared);
        tasks.spawn(async move { run_phone(phone, community, i, 100_000, 2, shared, None).await });
    }
    tokio::time::sleep(Duration::from_secs(args.ingest_seconds)).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    let drain = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failures.push(format!("{e:#}")),
                Err(e) => failures.push(format!("task: {e}")),
            }
        }
    })
    .await;
    if drain.is_err() {
        failures.push(format!(
            "{} phones still syncing 60 s after the stop: abandoned",
            tasks.len()
        ));
        tasks.abort_all();
    }
    let ingest_seconds = ingest_started.elapsed().as_secs_f64();
    let stored = shared.stored.load(Ordering::Relaxed);
    server.check_alive()?;
    steps.push(step(
        &server,
        started,
        "phones ingested",
        format!(
            "{} phones, {stored} changes stored in {ingest_seconds:.1} s ({:.0}/s), {} failures",
            args.ingest_phones,
            stored as f64 / ingest_seconds,
            failures.len()
        ),
        json!({ "phones": args.ingest_phones, "changes_stored": stored, "seconds": round3(ingest_seconds),
                "failures": failures.iter().take(10).collect::<Vec<_>>() }),
    )?);

    // The overdue passes: until none is left (or the wait is over).
    let wait_started = Instant::now();
    let wait_until = wait_started + Duration::from_secs(args.escalation_wait);
    let left = loop {
        let (body, _) = get(
            &mut http,
            &token,
            &format!("/v1/cases?overdue=true&status=registered,dispatched&limit={PAGE}"),
        )
        .await?;
        let left = body["cases"].as_array().map_or(0, |cases| {
            cases
                .iter()
                .filter(|c| c["level"].as_str() != Some("city"))
                .count()
        });
        if left == 0 || Instant::now() >= wait_until {
            break left;
        }
        tokio::time::sleep(Duration::from_secs(args.escalate_seconds.max(1))).await;
    };
    server.check_alive()?;
    let escalated = server.log_count("overdue case escalated");
    steps.push(step(
        &server,
        started,
        "overdue escalated",
        format!(
            "{escalated} cases escalated since the start ({} overdue at start), {} still overdue{}, waited {:.1} s",
            seeding.finished.overdue,
            left,
            if left >= PAGE { "+" } else { "" },
            wait_started.elapsed().as_secs_f64()
        ),
        json!({ "escalated": escalated, "overdue_at_start": seeding.finished.overdue,
                "still_overdue": left, "waited_seconds": round3(wait_started.elapsed().as_secs_f64()) }),
    )?);
    let (log_count, log_lines) = server.log_problems();
    let server_cpu = server.cpu_seconds()?;
    server.stop().await;
    let end_bytes = database_bytes(&database).await?;

    let peak = steps.iter().map(|s| s.hwm_kib).max().unwrap_or(0);
    for s in &steps {
        rows.push((
            format!("RSS / peak: {}", s.name),
            format!(
                "{} / {}  (server CPU {:.1} s, {} escalated)",
                mib(s.rss_kib),
                mib(s.hwm_kib),
                s.cpu_seconds,
                s.escalated
            ),
        ));
    }
    rows.push((
        "server peak RSS (VmHWM) over the run".to_owned(),
        format!(
            "{} ({:.0}% of the 1 GB bound)",
            mib(peak),
            peak as f64 * 1024.0 / GOAL_RSS_BYTES * 100.0
        ),
    ));
    rows.push((
        "database at the end".to_owned(),
        format!("{:.1} MiB", end_bytes as f64 / 1048576.0),
    ));
    rows.push((
        "server log warnings/errors".to_owned(),
        log_count.to_string(),
    ));
    print_table(
        &format!("wangge-bench memory ({})", database.backend()),
        &rows,
    );
    println!();
    for s in &steps {
        println!("  {}: {}", s.name, s.detail);
    }
    for line in &log_lines {
        println!("  server log: {line}");
    }

    if let Value::Object(map) = &mut result {
        map.insert(
            "steps".into(),
            Value::Array(
                steps
                    .iter()
                    .map(|s| {
                        json!({
                            "step": s.name, "rss_kib": s.rss_kib, "peak_rss_kib": s.hwm_kib,
                            "server_cpu_seconds": round3(s.cpu_seconds),
                            "at_seconds": round3(s.at_seconds), "escalated_so_far": s.escalated,
                            "detail": s.json,
                        })
                    })
                    .collect(),
            ),
        );
        map.insert("server_peak_rss_kib".into(), json!(peak));
        map.insert(
            "peak_rss_vs_1gb".into(),
            json!(round3(peak as f64 * 1024.0 / GOAL_RSS_BYTES)),
        );
        map.insert("server_cpu_seconds".into(), json!(round3(server_cpu)));
        map.insert("database_bytes_at_end".into(), json!(end_bytes));
        map.insert("escalate_seconds".into(), json!(args.escalate_seconds));
        map.insert("server_log_problems".into(), json!(log_count));
        map.insert("server_log_sample".into(), json!(log_lines));
    }
    let out = args.out.clone().unwrap_or_else(|| default_out("memory"));
    write_json(&out, &result)
}
