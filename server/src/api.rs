//! The HTTP API, and only HTTP: the router, the shared state, the error type
//! (`error.rs`), the extractors (`extract.rs`) and one module per resource. What the
//! handlers store goes through the write path in `crate::writes`, which the background
//! jobs use too. Every error is JSON `{"error": {"code", "message"}}` with the right
//! status; handlers take typed extractors and never unwrap what a client sent.

mod accounts;
mod assessment;
mod assignments;
mod blobs;
mod cases;
pub(crate) mod catalogue;
mod console;
mod error;
mod extract;
mod intake;
mod locate;
mod open311;
mod patrol;
mod push_socket;
mod service;
mod sync_round;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, head, post, put};

use wangge_sync_core::grid::GridIndex;
use wangge_sync_core::ownership::Ownership;

use crate::auth::Auth;
use crate::store::Store;

/// Milliseconds since the epoch (kept here for the API's users; see `crate::writes`).
pub use crate::writes::now_ms;
pub(crate) use error::bad_request;
pub use error::{ApiError, ErrorCode};
pub(crate) use extract::current_user;
pub use extract::{Caller, JsonBody, QueryParams};
pub use locate::MAX_GRIDS_PER_REQUEST;
pub use service::OPENAPI;
pub use sync_round::round_at;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Authentication.
    pub auth: Arc<Auth>,
    /// The unit grids, if any are imported (loaded at start).
    pub grids: Option<Arc<GridIndex>>,
    /// Which team handles what, where.
    pub ownership: Arc<Ownership>,
    /// The sync protocol's engine.
    pub sync: Arc<crate::sync::SyncEngine>,
    /// The online devices' push sockets.
    pub push: Arc<crate::push::PushHub>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Photo uploads and their limits.
    pub blobs: Arc<crate::blobs::Blobs>,
    /// The assessment's weights and grade bands (`WANGGE_ASSESSMENT` or built in).
    pub assessment: Arc<wangge_sync_core::assessment::AssessmentRules>,
    /// The districts', streets' and communities' outlines, computed once each.
    pub outlines: Arc<crate::grids::Outlines>,
    /// The web console's settings (its tiles, whether cookies are `Secure`).
    pub console: Arc<crate::console::ConsoleSettings>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Stores an edit the API made for `writer_device` (`crate::writes::store_edit`
    /// with this node's store, push hub and rules).
    pub(crate) async fn store_edit(
        &self,
        writer_device: &str,
        edit: crate::writes::ServerEdit,
        now_ms: i64,
    ) -> Result<(), crate::store::StoreError> {
        crate::writes::store_edit(
            self.store.as_ref(),
            &self.push,
            &self.sync.rules,
            writer_device,
            edit,
            now_ms,
        )
        .await
    }
}

impl AppState {
    /// Takes a case in for a caller (`crate::intake::create` with this node's store,
    /// push hub and rules).
    pub(crate) async fn intake(
        &self,
        reporter: crate::intake::Reporter<'_>,
        intake: crate::intake::Intake,
    ) -> Result<crate::intake::Created, crate::intake::IntakeError> {
        let now = chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default();
        crate::intake::create(
            &self.store,
            &self.push,
            &self.sync.rules,
            reporter,
            intake,
            now,
        )
        .await
    }
}

/// The whole API surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        // The command centre's console (docs/console.md): its page and files are not
        // API operations (`tests/tests/openapi.rs` lists them as such); its session is.
        .route("/", get(console::page))
        .route("/console/{*file}", get(console::file))
        .route(
            "/v1/console/session",
            get(console::show)
                .post(console::login)
                .delete(console::logout),
        )
        .route("/v1/console/session/refresh", post(console::refresh))
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi))
        .route("/v1/auth/login", post(accounts::login))
        .route("/v1/auth/refresh", post(accounts::refresh))
        .route("/v1/auth/logout", post(accounts::logout))
        .route("/v1/me", get(accounts::me))
        .route("/v1/users", get(accounts::users))
        .route("/v1/users/{id}/posting", put(assignments::set_posting))
        .route("/v1/assignments", get(assignments::list))
        .route("/v1/ownership-rules", get(assignments::ownership_rules))
        .route("/v1/grids", get(locate::grids_in_bbox))
        .route("/v1/grids/locate", get(locate::locate))
        .route("/v1/grids/outlines", get(locate::outlines))
        .route("/v1/grids/mine", get(locate::grids_mine))
        .route("/v1/catalogue", get(catalogue::catalogue))
        .route("/v1/routing", get(locate::routing))
        .route("/v1/cases", get(cases::list).post(intake::create))
        .route("/v1/cases/{id}", get(cases::show))
        .route("/v1/cases/{id}/actions", post(cases::act))
        .route("/v1/patrol/logs", get(patrol::list))
        .route("/v1/patrol/logs/{id}", get(patrol::show))
        .route("/v1/patrol/logs/{id}/track", get(patrol::track))
        .route("/v1/patrol/logs/{id}/reviews", post(patrol::review))
        .route("/v1/patrol/coverage", get(patrol::coverage))
        .route("/v1/patrol/anomalies", get(patrol::anomalies))
        .route("/v1/patrol/summary", get(patrol::summary))
        .route("/v1/double-reports", get(patrol::double_reports))
        .route("/v1/assessment", get(assessment::report))
        .route("/v1/assessment/reports", post(assessment::publish))
        .route(
            "/v1/assessment/reports/{period}",
            get(assessment::published),
        )
        .route("/v1/assessment/spot-checks", post(assessment::spot_check))
        .route(
            "/v1/sync",
            // The protocol bounds requests itself (`Limits::max_request`, refused with
            // a typed error); the body limit only stops what is far beyond it.
            post(sync_round::sync).layer(axum::extract::DefaultBodyLimit::max(
                state.sync.limits.max_request.saturating_add(1),
            )),
        )
        .route("/v1/push", get(push_socket::push))
        .route(
            "/v1/blobs/{sha256}",
            head(blobs::head_blob)
                .patch(blobs::patch_blob)
                .delete(blobs::delete_upload)
                // The chunk limit is checked from Content-Length before the body is
                // read; this only stops a body that lies about its length.
                .layer(axum::extract::DefaultBodyLimit::max(
                    usize::try_from(state.blobs.settings.max_chunk)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1),
                )),
        )
        .route("/v1/blobs/{sha256}/{variant}", get(blobs::get_derivative))
        // Open311 GeoReport v2 (`api/open311.rs`, docs/open311.md): each resource as
        // `.json` and `.xml`; `{service}`, `{request}`, `{token}` end in either.
        .route("/open311/v2/discovery.json", get(open311::discovery_json))
        .route("/open311/v2/discovery.xml", get(open311::discovery_xml))
        .route("/open311/v2/services.json", get(open311::services_json))
        .route("/open311/v2/services.xml", get(open311::services_xml))
        .route(
            "/open311/v2/services/{service}",
            get(open311::service_definition),
        )
        .route(
            "/open311/v2/requests.json",
            get(open311::requests_json).post(open311::post_json),
        )
        .route(
            "/open311/v2/requests.xml",
            get(open311::requests_xml).post(open311::post_xml),
        )
        .route("/open311/v2/requests/{request}", get(open311::request))
        .route("/open311/v2/tokens/{token}", get(open311::token))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
