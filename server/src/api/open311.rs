//! `/open311/v2/…`: Open311 GeoReport v2 for citizens' apps and city portals —
//! discovery, the catalogue's categories as services, posting a request (with a key
//! made by `wangge apikey add`), requests by id, token or query. Every endpoint in
//! `.json` and `.xml`; every refusal the specification's array of `{code,
//! description}` with its HTTP status (not our `{"error": …}`). What is chosen where
//! the specification leaves a choice is in `docs/open311.md`; the tree of each answer
//! and the statuses are in `crate::open311`.

use std::collections::HashMap;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wangge_sync_core::case::{CaseDocument, Source, Status};
use wangge_sync_core::catalog::{Catalog, Category};
use wangge_sync_core::geo::Crs;

use super::AppState;
use crate::intake::{Contact, Intake, IntakeError, Point, Reporter};
use crate::open311::{self as o311, Format, Node};
use crate::store::cases::CaseRow;
use crate::store::open311::{Open311Request, RequestQuery};

/// A refusal in the specification's shape, in the format the path asked for.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    description: String,
    format: Format,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(format: Format, status: StatusCode, description: impl Into<String>) -> Refusal {
        Refusal {
            status,
            description: description.into(),
            format,
            retry_after: None,
        }
    }

    fn storage(format: Format, error: &dyn std::fmt::Display) -> Refusal {
        tracing::error!(%error, "Open311: storage failed");
        Refusal::new(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not available: try again later",
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = o311::errors(self.status.as_u16(), &self.description);
        let mut response = answer(self.format, "errors", &body, self.status);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

type Answer = Result<Response, Refusal>;

/// `body` as JSON, or as XML under `root`.
fn answer(format: Format, root: &str, body: &Node, status: StatusCode) -> Response {
    let text = match format {
        Format::Json => body.to_json().to_string(),
        Format::Xml => body.to_xml(root),
    };
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn ok(format: Format, root: &str, body: &Node) -> Answer {
    Ok(answer(format, root, body, StatusCode::OK))
}

/// `{name}.json` / `{name}.xml` of a path segment; 404 for any other ending (JSON).
fn split(file: &str) -> Result<(&str, Format), Refusal> {
    o311::Format::split(file).ok_or_else(|| {
        Refusal::new(
            Format::Json,
            StatusCode::NOT_FOUND,
            "not found: the path ends in .json or .xml",
        )
    })
}

/// The query parameters (a bad query string is a 400 in the specification's shape).
fn params(
    format: Format,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<HashMap<String, String>, Refusal> {
    let Query(pairs) = query.map_err(|rejection| {
        Refusal::new(
            format,
            StatusCode::BAD_REQUEST,
            format!("the query string does not parse: {}", rejection.body_text()),
        )
    })?;
    Ok(pairs.into_iter().collect())
}

// ---------------------------------------------------------------------------------
// Discovery and services

pub(super) async fn discovery_json(headers: axum::http::HeaderMap) -> Answer {
    discovery(&headers, Format::Json)
}

pub(super) async fn discovery_xml(headers: axum::http::HeaderMap) -> Answer {
    discovery(&headers, Format::Xml)
}

/// The service discovery document: one production endpoint (this server's
/// `/open311/v2`), both formats. The changeset is the catalogue's: the built-in
/// one's date, or the server's start for an operator's file.
fn discovery(headers: &axum::http::HeaderMap, format: Format) -> Answer {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let changeset = o311::w3c(*CHANGESET);
    let body = Node::Map(vec![
        ("changeset", Node::Text(changeset.clone())),
        (
            "contact",
            Node::Text("城市管理监督指挥中心 (the city management command centre)".into()),
        ),
        (
            "key_service",
            Node::Text("API keys are issued by the server's operator (wangge apikey add)".into()),
        ),
        (
            "endpoints",
            Node::List {
                item: "endpoint",
                items: vec![Node::Map(vec![
                    ("specification", Node::Text(o311::SPECIFICATION.into())),
                    (
                        "url",
                        Node::Text(format!("{scheme}://{host}{}", o311::BASE_PATH)),
                    ),
                    ("changeset", Node::Text(changeset)),
                    ("type", Node::Text("production".into())),
                    (
                        "formats",
                        Node::List {
                            item: "format",
                            items: vec![
                                Node::Text("text/xml".into()),
                                Node::Text("application/json".into()),
                            ],
                        },
                    ),
                ])],
            },
        ),
    ]);
    ok(format, "discovery", &body)
}

/// When this server started: the catalogue (the services) cannot change while it runs.
static CHANGESET: std::sync::LazyLock<i64> = std::sync::LazyLock::new(crate::writes::now_ms);

/// `Chinese English`.
fn both(zh: &str, en: &str) -> String {
    format!("{zh} {en}")
}

fn group_of(catalog: &Catalog, category: &Category) -> String {
    let code = category.code;
    catalog.major_class(code.kind(), code.major()).map_or_else(
        || both(code.kind().name_zh(), code.kind().name_en()),
        |major| both(&major.name_zh, &major.name_en),
    )
}

fn service_node(catalog: &Catalog, category: &Category) -> Node {
    let kind = category.code.kind();
    let group = group_of(catalog, category);
    Node::Map(vec![
        ("service_code", Node::Text(category.code.to_string())),
        (
            "service_name",
            Node::Text(both(&category.name_zh, &category.name_en)),
        ),
        (
            "description",
            Node::Text(format!(
                "{}（{}）/ {} ({})",
                category.name_zh,
                kind.name_zh(),
                category.name_en,
                kind.name_en()
            )),
        ),
        // No category asks for attributes: a service definition is never needed.
        ("metadata", Node::Bool(false)),
        ("type", Node::Text("realtime".into())),
        ("keywords", Node::Text(category.aliases.join(", "))),
        ("group", Node::Text(group)),
    ])
}

pub(super) async fn services_json(State(state): State<AppState>) -> Answer {
    services(&state, Format::Json)
}

pub(super) async fn services_xml(State(state): State<AppState>) -> Answer {
    services(&state, Format::Xml)
}

fn services(state: &AppState, format: Format) -> Answer {
    let catalog = state.sync.rules.catalog;
    let items = catalog
        .categories()
        .map(|category| service_node(catalog, category))
        .collect();
    ok(
        format,
        "services",
        &Node::List {
            item: "service",
            items,
        },
    )
}

fn category<'c>(catalog: &'c Catalog, code: &str) -> Option<&'c Category> {
    catalog.get(&code.trim().parse().ok()?)
}

/// `GET services/{code}.{format}`: the service definition (no attributes).
pub(super) async fn service_definition(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Answer {
    let (code, format) = split(&file)?;
    let category = category(state.sync.rules.catalog, code).ok_or_else(|| {
        Refusal::new(
            format,
            StatusCode::NOT_FOUND,
            format!(
                "service_code {code:?} not found: see services.{}",
                ext(format)
            ),
        )
    })?;
    let body = Node::Map(vec![
        ("service_code", Node::Text(category.code.to_string())),
        (
            "attributes",
            Node::List {
                item: "attribute",
                items: Vec::new(),
            },
        ),
    ]);
    ok(format, "service_definition", &body)
}

const fn ext(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Xml => "xml",
    }
}

// ---------------------------------------------------------------------------------
// Requests

/// One request as published: nothing personal (no reporter, assignee, contact).
/// `view` is the folded case for a request posted through Open311 (`posted`): its
/// description and the reply are the citizen's own, written for them; a case from
/// another source (a hotline call, a patrol) shows neither, as the operator's or the
/// worker's words may name the caller.
fn request_node(
    catalog: &Catalog,
    row: &CaseRow,
    view: Option<&wangge_sync_core::case::CaseView>,
    posted: Option<&Open311Request>,
    duplicate_of: Option<&Duplicated>,
) -> Node {
    let status = row.status.as_deref().and_then(Status::parse);
    let category = row.category.as_deref().and_then(|c| category(catalog, c));
    // A duplicate's caller is told the reply of the case that stands.
    let reply = match duplicate_of {
        Some(duplicated) => duplicated.reply.clone(),
        None => view.and_then(|v| v.last_reply().map(str::to_owned)),
    };
    let status_notes = status.map(|s| {
        let mut notes = both(s.name_zh(), s.name_en());
        if let Some(duplicated) = duplicate_of {
            notes.push_str(&format!(". 重复 Duplicate of {}", duplicated.id));
        }
        if let Some(reply) = &reply {
            notes.push_str(&format!(". 回复 Reply: {reply}"));
        }
        notes
    });
    let description = view.map(|view| view.record.description.clone());
    let agency = row
        .team
        .as_deref()
        .and_then(|team| catalog.team(team))
        .map(|team| both(&team.name_zh, &team.name_en));
    let requested = row.reported_at.unwrap_or(row.updated_at);
    let updated = match status {
        Some(Status::Closed | Status::Voided) => row.closed_at.unwrap_or(row.updated_at),
        _ => row.updated_at,
    };
    Node::Map(vec![
        ("service_request_id", Node::Text(row.id.clone())),
        ("status", Node::text(status.map(o311::public_status))),
        ("status_notes", Node::text(status_notes)),
        (
            "service_name",
            Node::text(category.map(|c| both(&c.name_zh, &c.name_en))),
        ),
        ("service_code", Node::text(row.category.clone())),
        ("description", Node::text(description)),
        ("agency_responsible", Node::text(agency)),
        ("service_notice", Node::Null),
        ("requested_datetime", Node::Text(o311::w3c(requested))),
        (
            "updated_datetime",
            Node::Text(o311::w3c(updated.max(requested))),
        ),
        ("expected_datetime", Node::Null),
        ("address", Node::Text(row.address.clone())),
        ("address_id", Node::Null),
        ("zipcode", Node::Null),
        ("lat", row.lat.map_or(Node::Null, Node::Float)),
        ("long", row.lon.map_or(Node::Null, Node::Float)),
        (
            "media_url",
            Node::text(posted.and_then(|p| p.media_url.clone())),
        ),
    ])
}

/// The case a voided request was a duplicate of, and that case's reply.
#[derive(Debug)]
struct Duplicated {
    id: String,
    reply: Option<String>,
}

/// The case `id` folded; `None` when it is not stored or does not load.
async fn folded(
    state: &AppState,
    format: Format,
    id: &str,
) -> Result<Option<wangge_sync_core::case::CaseView>, Refusal> {
    match crate::writes::load_stored(state.store.as_ref(), id).await {
        Ok(Some(doc)) => Ok(Some(
            CaseDocument::from_automerge(doc).fold(&state.sync.rules.context()),
        )),
        // The row alone still says what the public may know.
        Ok(None) | Err(crate::writes::WriteError::Corrupt { .. }) => Ok(None),
        Err(crate::writes::WriteError::Store(e)) => Err(Refusal::storage(format, &e)),
    }
}

/// The requests of `rows`; those posted through Open311 folded (for the full
/// description and the reply).
async fn request_nodes(
    state: &AppState,
    format: Format,
    rows: &[CaseRow],
) -> Result<Node, Refusal> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let posted: HashMap<String, Open311Request> = state
        .store
        .open311_requests_of(&ids)
        .await
        .map_err(|e| Refusal::storage(format, &e))?
        .into_iter()
        .map(|p| (p.case_id.clone(), p))
        .collect();
    let catalog = state.sync.rules.catalog;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let posted = posted.get(&row.id);
        if posted.is_none() {
            items.push(request_node(catalog, row, None, None, None));
            continue;
        }
        let view = folded(state, format, &row.id).await?;
        let mut duplicate_of = None;
        if row.status.as_deref() == Some(Status::Voided.as_str()) {
            let link = state
                .store
                .duplicate_link(&row.id)
                .await
                .map_err(|e| Refusal::storage(format, &e))?;
            if let Some(link) = link {
                let reply = folded(state, format, &link.duplicate_of)
                    .await?
                    .as_ref()
                    .and_then(|v| v.last_reply().map(str::to_owned));
                duplicate_of = Some(Duplicated {
                    id: link.duplicate_of,
                    reply,
                });
            }
        }
        items.push(request_node(
            catalog,
            row,
            view.as_ref(),
            posted,
            duplicate_of.as_ref(),
        ));
    }
    Ok(Node::List {
        item: "request",
        items,
    })
}

pub(super) async fn requests_json(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    list_requests(&state, Format::Json, query).await
}

pub(super) async fn requests_xml(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    list_requests(&state, Format::Xml, query).await
}

/// A comma-separated list, trimmed, without empties.
fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `GET requests.{format}`: by ids (which override everything else, as the spec
/// says), or by service codes, status and a span of at most 90 days (the last 90
/// by default), newest first; `page` (from 1) and `page_size` (1–1000, default 1000:
/// the spec's "first 1000 requests") are an extension.
async fn list_requests(
    state: &AppState,
    format: Format,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let params = params(format, query)?;
    let bad = |message: String| Refusal::new(format, StatusCode::BAD_REQUEST, message);
    let number = |name: &str, default: u32, max: u32| -> Result<u32, Refusal> {
        match params.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| bad(format!("{name} must be a whole number from 1 to {max}"))),
        }
    };
    let page_size = number("page_size", o311::MAX_PAGE_SIZE, o311::MAX_PAGE_SIZE)?;
    let page = number("page", 1, 1_000_000)?;
    let ids = list(params.get("service_request_id"));
    if ids.len() > o311::MAX_PAGE_SIZE as usize {
        return Err(bad(format!(
            "at most {} service_request_id at once",
            o311::MAX_PAGE_SIZE
        )));
    }
    let (mut open, mut closed) = (false, false);
    for status in list(params.get("status")) {
        match status.as_str() {
            "open" => open = true,
            "closed" => closed = true,
            other => return Err(bad(format!("status {other:?}: open or closed"))),
        }
    }
    let closed = match (open, closed) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    };
    let date = |name: &str| -> Result<Option<i64>, Refusal> {
        params
            .get(name)
            .map(|text| {
                o311::parse_w3c(text).ok_or_else(|| {
                    bad(format!(
                        "{name} {text:?}: a W3C date-time with its offset, e.g. 2026-12-07T16:30:00+08:00"
                    ))
                })
            })
            .transpose()
    };
    let (start, end) = (date("start_date")?, date("end_date")?);
    let (from, to) = match (start, end) {
        (None, None) => {
            let now = crate::writes::now_ms();
            (now - o311::MAX_SPAN_MS, now)
        }
        (Some(start), None) => (start, start + o311::MAX_SPAN_MS),
        (None, Some(end)) => (end - o311::MAX_SPAN_MS, end),
        (Some(start), Some(end)) => {
            if end < start {
                return Err(bad("end_date is before start_date".into()));
            }
            if end - start > o311::MAX_SPAN_MS {
                return Err(bad(
                    "start_date to end_date may not span more than 90 days".into()
                ));
            }
            (start, end)
        }
    };
    let query = RequestQuery {
        ids,
        categories: list(params.get("service_code")),
        closed,
        from,
        // end_date is the latest time included.
        to: to.saturating_add(1),
        limit: page_size,
        offset: (page - 1).saturating_mul(page_size),
    };
    let rows = state
        .store
        .open311_cases(&query)
        .await
        .map_err(|e| Refusal::storage(format, &e))?;
    let body = request_nodes(state, format, &rows).await?;
    ok(format, "service_requests", &body)
}

/// `GET requests/{id}.{format}`.
pub(super) async fn request(State(state): State<AppState>, Path(file): Path<String>) -> Answer {
    let (id, format) = split(&file)?;
    let row = state
        .store
        .case_row(id)
        .await
        .map_err(|e| Refusal::storage(format, &e))?
        .filter(|row| row.status.is_some())
        .ok_or_else(|| {
            Refusal::new(
                format,
                StatusCode::NOT_FOUND,
                format!("service_request_id {id:?} not found"),
            )
        })?;
    let body = request_nodes(&state, format, std::slice::from_ref(&row)).await?;
    ok(format, "service_requests", &body)
}

/// `GET tokens/{token}.{format}`.
pub(super) async fn token(State(state): State<AppState>, Path(file): Path<String>) -> Answer {
    let (token, format) = split(&file)?;
    let posted = state
        .store
        .open311_request_by_token(token)
        .await
        .map_err(|e| Refusal::storage(format, &e))?
        .ok_or_else(|| {
            Refusal::new(
                format,
                StatusCode::NOT_FOUND,
                format!("token {token:?} not found"),
            )
        })?;
    let body = Node::List {
        item: "request",
        items: vec![Node::Map(vec![
            ("service_request_id", Node::Text(posted.case_id)),
            ("token", Node::Text(posted.token)),
        ])],
    };
    ok(format, "service_requests", &body)
}

// ---------------------------------------------------------------------------------
// Posting a request

pub(super) async fn post_json(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    post_request(&state, Format::Json, query, form).await
}

pub(super) async fn post_xml(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    post_request(&state, Format::Xml, query, form).await
}

/// The longest `media_url` taken.
const MAX_URL_CHARS: usize = 2000;
/// The longest name, phone, email, address taken.
const MAX_FIELD_CHARS: usize = 200;

/// `POST requests.{format}` (form-encoded, as the spec says): the case is created by
/// the server's intake like a hotline call's, its contact kept on the server only.
async fn post_request(
    state: &AppState,
    format: Format,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let bad = |message: String| Refusal::new(format, StatusCode::BAD_REQUEST, message);
    // The api_key may come in the query string too (some clients put it there).
    let mut params = params(format, query)?;
    let Form(body) = form.map_err(|rejection| {
        bad(format!(
            "the body must be application/x-www-form-urlencoded: {}",
            rejection.body_text()
        ))
    })?;
    params.extend(body);
    let field = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

    // The key first: nothing is said to a client without one.
    let forbidden = || {
        Refusal::new(
            format,
            StatusCode::FORBIDDEN,
            "api_key was not provided or is not valid",
        )
    };
    let key = field("api_key").ok_or_else(forbidden)?;
    let key = state
        .store
        .api_key_by_hash(&o311::key_hash(key))
        .await
        .map_err(|e| Refusal::storage(format, &e))?
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(forbidden)?;
    let now = crate::writes::now_ms();
    if let Some(rate) = key.rate_per_minute {
        let rate = u32::try_from(rate).unwrap_or(0);
        if let Err(seconds) = o311::take_rate(&key.id, rate, now) {
            let mut refusal = Refusal::new(
                format,
                StatusCode::TOO_MANY_REQUESTS,
                format!("this api_key may post {rate} requests a minute: try again in {seconds} s"),
            );
            refusal.retry_after = Some(seconds);
            return Err(refusal);
        }
    }

    let code = field("service_code").ok_or_else(|| bad("service_code was not provided".into()))?;
    let service = category(state.sync.rules.catalog, code).ok_or_else(|| {
        Refusal::new(
            format,
            StatusCode::NOT_FOUND,
            format!(
                "service_code {code:?} not found: see services.{}",
                ext(format)
            ),
        )
    })?;
    let coordinate = |name: &str, limit: f64| -> Result<Option<f64>, Refusal> {
        field(name)
            .map(|text| {
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && v.abs() <= limit)
                    .ok_or_else(|| bad(format!("{name} {text:?} is not a WGS-84 coordinate")))
            })
            .transpose()
    };
    let point = match (coordinate("lat", 90.0)?, coordinate("long", 180.0)?) {
        (Some(lat), Some(lon)) => Point {
            lon,
            lat,
            crs: Crs::Wgs84,
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad("lat and long are sent together".into()));
        }
        (None, None) if field("address_string").is_some() || field("address_id").is_some() => {
            return Err(bad(
                "a location is needed as lat and long (WGS-84): this server cannot place an \
                 address_string or address_id on its grids (no geocoder)"
                    .into(),
            ));
        }
        (None, None) => {
            return Err(bad(
                "a location was not provided: lat and long (WGS-84)".into()
            ));
        }
    };
    let description = field("description").unwrap_or("").to_owned();
    if description.chars().count() > o311::MAX_DESCRIPTION_CHARS {
        return Err(bad(format!(
            "description is longer than {} characters",
            o311::MAX_DESCRIPTION_CHARS
        )));
    }
    let media_url = field("media_url").map(str::to_owned);
    if let Some(url) = &media_url {
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !web || url.chars().count() > MAX_URL_CHARS || url.chars().any(char::is_whitespace) {
            return Err(bad(format!(
                "media_url must be an http(s) URL of at most {MAX_URL_CHARS} characters"
            )));
        }
    }
    for name in [
        "address_string",
        "email",
        "phone",
        "first_name",
        "last_name",
    ] {
        if field(name).is_some_and(|v| v.chars().count() > MAX_FIELD_CHARS) {
            return Err(bad(format!(
                "{name} is longer than {MAX_FIELD_CHARS} characters"
            )));
        }
    }
    let name = [field("last_name"), field("first_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let contact = Contact {
        name: (!name.is_empty()).then_some(name),
        phone: field("phone").map(str::to_owned),
        email: field("email").map(str::to_owned),
        wants_reply: field("phone").is_some() || field("email").is_some(),
    };
    // The description is optional in Open311 but not in a case: the service's name
    // stands in for a citizen who gave none.
    let description = if description.is_empty() {
        both(&service.name_zh, &service.name_en)
    } else {
        description
    };
    // The photo's address goes with the description for the acceptor; never fetched.
    let text = match &media_url {
        Some(url) => format!("{description}\n照片 Photo: {url}")
            .trim()
            .to_owned(),
        None => description,
    };
    let token = o311::new_token();
    let intake = Intake {
        source: Source::Citizen,
        category: service.code.to_string(),
        description: text,
        address: field("address_string").unwrap_or("").to_owned(),
        point: Some(point),
        grid: None,
        photos: Vec::new(),
        contact,
        source_ref: Some(format!("open311:{token}")),
    };
    let created = state
        .intake(
            Reporter::Open311 {
                key_name: &key.name,
            },
            intake,
        )
        .await
        .map_err(|error| intake_refusal(format, code, error))?;
    let posted = Open311Request {
        token: token.clone(),
        case_id: created.id.clone(),
        api_key_id: key.id.clone(),
        media_url,
        created_at: now,
    };
    // The case exists whatever happens here: the client is given its id either way.
    let token = match state.store.open311_request_add(&posted).await {
        Ok(()) => Node::Text(token),
        Err(error) => {
            tracing::error!(case = %created.id, %error, "Open311: the request's token was not stored");
            Node::Null
        }
    };
    tracing::info!(case = %created.id, key = %key.name, "Open311 request created");
    let body = Node::List {
        item: "request",
        items: vec![Node::Map(vec![
            ("service_request_id", Node::Text(created.id)),
            ("token", token),
            ("service_notice", Node::Null),
            ("account_id", Node::text(field("account_id"))),
        ])],
    };
    ok(format, "service_requests", &body)
}

fn intake_refusal(format: Format, code: &str, error: IntakeError) -> Refusal {
    let bad = |message: String| Refusal::new(format, StatusCode::BAD_REQUEST, message);
    match error {
        IntakeError::UnknownCategory(_) => Refusal::new(
            format,
            StatusCode::NOT_FOUND,
            format!("service_code {code:?} not found"),
        ),
        IntakeError::NoLocation => bad("a location was not provided: lat and long (WGS-84)".into()),
        IntakeError::OutsideGrids { .. } => {
            bad("lat/long is outside every grid this city manages: check the point (WGS-84)".into())
        }
        IntakeError::Invalid(message) => bad(message),
        // Not sent by this endpoint (no grid code, no uploaded photos, the key's role).
        error @ (IntakeError::UnknownGrid(_)
        | IntakeError::PhotoNotUploaded(_)
        | IntakeError::Forbidden(_)) => {
            tracing::error!(%error, "Open311: the intake refused what it should not see");
            bad(error.to_string())
        }
        IntakeError::Store(error) => Refusal::storage(format, &error),
    }
}
