//! A simulated phone: a device logged in over HTTP, sync-core's device session over an
//! in-memory device store (as `tests/tests/sync_api.rs` does), and the edits a field
//! worker makes offline: reports, comments, photos.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wangge_sync_core::calendar::WorkCalendar;
use wangge_sync_core::case::{
    Action, CaseDocument, NewCase, Photo, PhotoRole, Source, WorkflowContext,
};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::device::DeviceSession;
use wangge_sync_core::sync::memory::MemoryDevice;
use wangge_sync_core::sync::message::{Limits, Request};
use wangge_sync_core::sync::{DocKind, load_chunks};

use crate::http::Http;
use crate::world::{Rng, Spot};

/// The password of every bench account.
pub const PASSWORD: &str = "bench-password-2026";

/// Categories the phones report (暴露垃圾, 上水井盖, 乱堆物料, …): the first few of
/// the built-in catalogue's kinds, chosen by the bench's generator.
const CATEGORIES: [&str; 4] = ["E0102", "C0101", "E0101", "C0102"];

/// The wall clock, to the millisecond (chrono is built without its `clock` feature).
pub fn now() -> DateTime<Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn calendar() -> &'static WorkCalendar {
    static CALENDAR: OnceLock<WorkCalendar> = OnceLock::new();
    CALENDAR.get_or_init(WorkCalendar::standard)
}

fn context() -> WorkflowContext<'static> {
    WorkflowContext {
        catalog: Catalog::builtin(),
        calendar: calendar(),
    }
}

/// A logged-in device.
#[derive(Debug)]
pub struct Phone {
    /// Its HTTP connection.
    pub http: Http,
    /// Its access token.
    pub token: String,
    /// Who writes from it.
    pub actor: Actor,
    store: MemoryDevice,
    session: DeviceSession,
    /// The ids of its own cases, in the order reported.
    cases: Vec<String>,
    rng: Rng,
}

/// What one sync (rounds until the server has nothing more) did.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// Each request's latency: sent to reply read.
    pub latencies: Vec<Duration>,
    /// Changes to the phone's own cases in requests the server stored
    /// (acknowledged replies).
    pub changes_stored: u64,
    /// Changes to documents the phone received from others and sent back (the
    /// server has them and ignores them).
    pub foreign_resent: u64,
    /// Documents received from others (not acknowledgements).
    pub received: u64,
    /// Error answers, by `status code`, retried.
    pub errors: Vec<String>,
    /// When the first successful request was sent and its reply read.
    pub first: Option<(Instant, Instant)>,
    /// The replies' bytes.
    pub reply_bytes: u64,
    /// Whether the server had nothing more (else a bound stopped it).
    pub settled: bool,
}

impl Phone {
    /// Logs `user` in on a new device called `device_name`.
    pub async fn login(
        addr: SocketAddr,
        user: &str,
        device_name: &str,
        seed: u64,
    ) -> anyhow::Result<Phone> {
        let mut http = Http::new(addr);
        let response = http
            .post_json(
                "/v1/auth/login",
                None,
                &json!({ "user": user, "password": PASSWORD, "device": { "name": device_name } }),
            )
            .await?;
        if response.status != 200 {
            bail!(
                "login of {user} answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        let body = response.json();
        let me = &body["user"];
        let text = |v: &Value, what: &str| {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("the login answer has no {what}: {body}"))
        };
        let actor = Actor {
            user: user.to_owned(),
            role: text(&me["role"], "role")?
                .parse()
                .map_err(|e| anyhow::anyhow!("role: {e}"))?,
            team: match me["team"].as_str() {
                Some(t) => Some(TeamId::new(t).map_err(|e| anyhow::anyhow!("team: {e}"))?),
                None => None,
            },
            scope: text(&me["scope"], "scope")?
                .parse()
                .map_err(|e| anyhow::anyhow!("scope: {e}"))?,
            device: text(&body["device"]["actor_id"], "device actor id")?,
        };
        Ok(Phone {
            http,
            token: text(&body["access_token"], "access token")?,
            actor,
            store: MemoryDevice::new(),
            session: DeviceSession::new(Limits::default(), seed.wrapping_mul(1_000_003)),
            cases: Vec::new(),
            rng: Rng::new(seed),
        })
    }

    /// Reports a new case at `spot`, offline (stored on the phone, unsent). One change.
    pub fn report(&mut self, spot: &Spot) -> anyhow::Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        let category = CATEGORIES[self.rng.below(CATEGORIES.len())];
        let new = NewCase {
            id: id.clone(),
            category: category
                .parse()
                .map_err(|e| anyhow::anyhow!("category: {e}"))?,
            location: spot.position,
            grid: Some(spot.grid),
            address: format!("金水区 测试路 {} 号", self.rng.below(300) + 1),
            description: "路边暴露垃圾一堆，影响通行".into(),
            source: Source::Patrol,
            source_ref: None,
            caller: None,
        };
        let entry = uuid::Uuid::now_v7().to_string();
        let case =
            CaseDocument::create(&new, &self.actor, &entry, now()).context("creating a case")?;
        DeviceSession::record_local(&mut self.store, &id, DocKind::Case, case.automerge())
            .context("storing the case")?;
        self.cases.push(id.clone());
        Ok(id)
    }

    /// Own case `index` as stored on the phone (with whatever the server added).
    fn own_case(&self, index: usize) -> anyhow::Result<(String, CaseDocument)> {
        let id = self
            .cases
            .get(index)
            .with_context(|| format!("no own case {index}"))?
            .clone();
        let stored = self
            .store
            .documents()
            .get(&id)
            .with_context(|| format!("case {id} is not on the phone"))?;
        let case = CaseDocument::from_automerge(
            load_chunks(&stored.chunks).with_context(|| format!("loading {id}"))?,
        );
        Ok((id, case))
    }

    /// Adds photo entries with these hashes to own case `index`, offline (one change),
    /// as the app does after `prepare_upload`: the entry first, the upload after.
    pub fn add_photos(&mut self, index: usize, hashes: &[String]) -> anyhow::Result<()> {
        let now = now();
        let (id, mut case) = self.own_case(index)?;
        for hash in hashes {
            let photo = Photo {
                hash: hash.clone(),
                role: PhotoRole::Before,
                taken_at: Some(now),
                position: None,
                added_by: self.actor.user.clone(),
                added_at: now,
            };
            case.add_photo(&self.actor, &photo)
                .context("adding a photo")?;
        }
        DeviceSession::record_local(&mut self.store, &id, DocKind::Case, case.automerge())
            .context("storing the photos")?;
        Ok(())
    }

    /// Edits own case `index` offline: a comment (even `k`) or a photo (odd). One change.
    pub fn edit(&mut self, index: usize, k: usize, spot: &Spot) -> anyhow::Result<()> {
        let now = now();
        let entry = uuid::Uuid::now_v7().to_string();
        let photo = (k % 2 == 1).then(|| Photo {
            hash: self.rng.hex64(),
            role: PhotoRole::Before,
            taken_at: Some(now),
            position: Some(spot.position),
            added_by: self.actor.user.clone(),
            added_at: now,
        });
        // As the app does: the case as stored on the phone (with whatever the server
        // added, e.g. its routing and dispatch), edited, stored again.
        let (id, mut case) = self.own_case(index)?;
        match photo {
            Some(photo) => case
                .add_photo(&self.actor, &photo)
                .context("adding a photo")?,
            None => case
                .act(
                    &context(),
                    &self.actor,
                    &entry,
                    Action::Comment,
                    now,
                    Some(format!("现场复查第 {k} 次：仍未清理")),
                )
                .context("commenting")?,
        }
        DeviceSession::record_local(&mut self.store, &id, DocKind::Case, case.automerge())
            .context("storing the edit")?;
        Ok(())
    }

    /// Syncs until the server has nothing more; error answers (409, 503, …) are
    /// recorded and the round retried, up to `max_errors`. With `in_flight`, each
    /// request first takes a permit (the latency is counted from then).
    pub async fn sync(
        &mut self,
        max_errors: usize,
        in_flight: Option<&tokio::sync::Semaphore>,
    ) -> anyhow::Result<SyncOutcome> {
        let outcome = self.sync_bounded(max_errors, in_flight, 1000, None).await?;
        if !outcome.settled {
            bail!("{}: the sync does not settle", self.actor.user);
        }
        Ok(outcome)
    }

    /// [`Phone::sync`] with at most `max_requests` successful requests and no request
    /// started after `deadline`; `settled` says whether the server had nothing more.
    pub async fn sync_bounded(
        &mut self,
        max_errors: usize,
        in_flight: Option<&tokio::sync::Semaphore>,
        max_requests: usize,
        deadline: Option<Instant>,
    ) -> anyhow::Result<SyncOutcome> {
        let mut outcome = SyncOutcome::default();
        while outcome.latencies.len() < max_requests
            && deadline.is_none_or(|deadline| Instant::now() < deadline)
        {
            let request = self.session.prepare(&mut self.store)?;
            let (changes, foreign) = self.count_changes(&request)?;
            let bearer = format!("Bearer {}", self.token);
            let _permit = match in_flight {
                Some(semaphore) => Some(semaphore.acquire().await?),
                None => None,
            };
            let started = Instant::now();
            let response = self
                .http
                .request(
                    "POST",
                    "/v1/sync",
                    &[
                        ("Authorization", &bearer),
                        ("Content-Type", "application/cbor"),
                    ],
                    &request,
                )
                .await?;
            if response.status != 200 {
                outcome
                    .errors
                    .push(format!("{} {}", response.status, response.error_code()));
                if outcome.errors.len() > max_errors {
                    bail!(
                        "{}: too many sync errors: {:?}",
                        self.actor.user,
                        outcome.errors
                    );
                }
                self.session.abandon();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let replied = Instant::now();
            outcome.latencies.push(replied - started);
            outcome.first.get_or_insert((started, replied));
            let report = self.session.receive(&mut self.store, &response.body)?;
            if !report.refused.is_empty() {
                bail!(
                    "{}: the server refused documents: {:?}",
                    self.actor.user,
                    report.refused
                );
            }
            outcome.changes_stored += changes;
            outcome.foreign_resent += foreign;
            outcome.received += report.received.saturating_sub(report.acknowledged) as u64;
            outcome.reply_bytes += response.body.len() as u64;
            if !report.more {
                outcome.settled = true;
                return Ok(outcome);
            }
        }
        Ok(outcome)
    }

    /// Documents on the phone.
    pub fn documents(&self) -> usize {
        self.store.documents().len()
    }

    /// Own documents not yet acknowledged by the server.
    pub fn unsent(&self) -> usize {
        self.store.documents().values().filter(|d| d.unsent).count()
    }

    /// Every document the phone holds, and their changes: by the devices in
    /// `phones` (Automerge actor ids, hex) and by anyone else (the server's routing
    /// and dispatch).
    pub fn holdings(&self, phones: &HashSet<String>) -> anyhow::Result<Holdings> {
        let mut holdings = Holdings {
            documents: self.store.documents().len(),
            ..Holdings::default()
        };
        for (id, doc) in self.store.documents() {
            let loaded = load_chunks(&doc.chunks).with_context(|| format!("loading {id}"))?;
            for change in loaded.get_changes(&[]) {
                if phones.contains(&change.actor_id().to_hex_string()) {
                    holdings.phone_changes += 1;
                } else {
                    holdings.other_changes += 1;
                }
            }
        }
        Ok(holdings)
    }
}

/// What a phone holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Holdings {
    /// Documents.
    pub documents: usize,
    /// Their changes by the phones.
    pub phone_changes: u64,
    /// Their changes by anyone else.
    pub other_changes: u64,
}

impl Phone {
    /// The changes a request carries: to the phone's own cases, and to others.
    fn count_changes(&self, request: &[u8]) -> anyhow::Result<(u64, u64)> {
        let request = Request::decode(request, usize::MAX).context("decoding our own request")?;
        let (mut own, mut foreign) = (0, 0);
        for doc in &request.docs {
            let message = doc
                .automerge_message()
                .map_err(|e| anyhow::anyhow!("our own message of {}: {e}", doc.id))?;
            let changes = message.changes.len() as u64;
            if self.cases.contains(&doc.id) {
                own += changes;
            } else {
                foreign += changes;
            }
        }
        Ok((own, foreign))
    }
}
