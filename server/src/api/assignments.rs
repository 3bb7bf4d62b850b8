//! Postings (岗位, 定岗: who works where, in which role and team) and ownership rules
//! (权属规则) over HTTP: `GET /v1/assignments` (the postings in the caller's scope),
//! `PUT /v1/users/{id}/posting` (a supervisor or administrator moves someone, within
//! their own grids: `Role::may_assign`) and `GET /v1/ownership-rules` (which team
//! handles which category where, as the server routes every new case).
//!
//! A changed posting takes effect at once wherever the server reads postings from the
//! database: routing and automatic dispatch (`crate::cases::postings_of` over
//! `Store::users`, per decision), sync rounds, the case endpoints. An access token
//! already issued keeps the old role and scope in its claims until the user's next
//! refresh or login (at most the access-token lifetime).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wangge_sync_core::catalog::{Catalog, TeamId};
use wangge_sync_core::grid::{CommunityCode, DistrictCode, GridCode, GridIndex, StreetCode};
use wangge_sync_core::ownership::{CategoryPattern, DispatchMode, OverrideShape};
use wangge_sync_core::role::{AssignRefused, GridScope, Level, Role};

use super::{ApiError, AppState, Caller, JsonBody, QueryParams, bad_request, current_user, now_ms};
use crate::store::User;

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn invalid_posting(message: impl Into<String>) -> ApiError {
    bad_request("invalid_posting", message)
}

/// `GET /v1/assignments` query: every filter optional, each checked (400
/// `invalid_query`), unknown parameters refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignmentsQuery {
    /// A grid code prefix (district 6 digits, street 9, community 12, unit grid 15):
    /// the postings whose grids overlap it.
    grid: Option<String>,
    /// A team of the catalogue, e.g. `sanitation`.
    team: Option<String>,
    /// A role, e.g. `enforcement_officer`.
    role: Option<String>,
}

/// `GET /v1/assignments`: the postings of every user whose grids overlap the caller's
/// (everyone's for the roles that list all users), as `GET /v1/users` decides
/// (`Role::lists_users`); field workers, departments and the hotline get 403. Read
/// from the caller's account as it is now, not from the token.
pub(super) async fn list(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<AssignmentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let me = current_user(&state, &claims).await?;
    let catalog = state.sync.rules.catalog;
    let Some(everyone) = me.role.lists_users() else {
        return Err(forbidden(format!(
            "the role {} lists no postings",
            me.role.as_str()
        )));
    };
    let area = query
        .grid
        .as_deref()
        .map(|grid| {
            if !matches!(grid.len(), 6 | 9 | 12 | 15) {
                return Err(format!(
                    "grid {grid:?}: a district (6 digits), street (9), community (12) or unit grid (15) code"
                ));
            }
            check_prefix(grid).map_err(|e| format!("grid {grid:?}: {e}"))?;
            GridScope::new([grid]).map_err(|e| format!("grid {grid:?}: {e}"))
        })
        .transpose()
        .map_err(|message| bad_request("invalid_query", message))?;
    let team = query
        .team
        .as_deref()
        .map(|team| catalogue_team(catalog, team).map_err(|m| bad_request("invalid_query", m)))
        .transpose()?;
    let role = query
        .role
        .as_deref()
        .map(|role| role.parse::<Role>().map_err(|_| unknown_role(role)))
        .transpose()
        .map_err(|message| bad_request("invalid_query", message))?;
    let index = state.grids.as_deref();
    let assignments: Vec<Value> = state
        .store
        .users()
        .await?
        .iter()
        .filter(|u| everyone || u.scope.overlaps(&me.scope))
        .filter(|u| area.as_ref().is_none_or(|area| u.scope.overlaps(area)))
        .filter(|u| {
            team.as_ref()
                .is_none_or(|team| u.team.as_ref() == Some(team))
        })
        .filter(|u| role.is_none_or(|role| u.role == role))
        .map(|u| assignment_json(catalog, u, index))
        .collect();
    Ok(Json(json!({ "assignments": assignments })))
}

/// `PUT /v1/users/{id}/posting` body: the whole new posting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostingBody {
    /// A role, e.g. `sanitation_worker`.
    role: String,
    /// A team of the catalogue; `null` or absent for none.
    #[serde(default)]
    team: Option<String>,
    /// Grid code prefixes, comma-separated, or `*`; `""` for no grids.
    scope: String,
}

/// `PUT /v1/users/{id}/posting`: changes a user's role, team and grids. The caller must
/// be an administrator or a supervisor whose grids enclose both the user's current
/// grids and the new ones, and whose role may grant both roles (`Role::may_assign`;
/// 403 otherwise). Written to the audit log.
pub(super) async fn set_posting(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PostingBody>,
) -> Result<Json<Value>, ApiError> {
    let me = current_user(&state, &claims).await?;
    let catalog = state.sync.rules.catalog;
    if !me.role.assigns_postings() {
        return Err(forbidden(AssignRefused::NotAnAssigner(me.role).to_string()));
    }
    let role: Role = body
        .role
        .parse()
        .map_err(|_| invalid_posting(unknown_role(&body.role)))?;
    if role == Role::Server {
        return Err(invalid_posting(
            "server is the server's own role, not a posting",
        ));
    }
    let team = body
        .team
        .as_deref()
        .map(|team| catalogue_team(catalog, team))
        .transpose()
        .map_err(invalid_posting)?;
    let scope: GridScope = body
        .scope
        .parse()
        .map_err(|e| invalid_posting(format!("scope: {e}")))?;
    for prefix in scope.prefixes() {
        check_prefix(prefix).map_err(|e| invalid_posting(format!("scope: {e}")))?;
    }
    let user_not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no user {id:?}"),
        )
    };
    let user = state.store.user(&id).await?.ok_or_else(user_not_found)?;
    Role::check_posting(&me.id, &user.id, role, team.as_ref().map(TeamId::as_str)).map_err(
        |refused| match refused {
            AssignRefused::TeamRequired(_) => invalid_posting(refused.to_string()),
            _ => forbidden(refused.to_string()),
        },
    )?;
    me.role
        .may_assign(&me.scope, user.role, &user.scope, role, &scope)
        .map_err(|refused| forbidden(refused.to_string()))?;
    if !state
        .store
        .set_posting(&id, role, team.as_ref(), &scope)
        .await?
    {
        return Err(user_not_found());
    }
    let team_text = |team: Option<&TeamId>| team.map_or("-", TeamId::as_str).to_owned();
    let detail = format!(
        "{id} {} {} {scope} (was {} {} {})",
        role.as_str(),
        team_text(team.as_ref()),
        user.role.as_str(),
        team_text(user.team.as_ref()),
        user.scope,
    );
    state
        .store
        .audit(now_ms(), &me.id, "user.assign", &detail)
        .await?;
    tracing::info!(by = %me.id, posting = %detail, "posting changed through the API");
    // Today's patrol duties follow the new posting; past days keep theirs.
    let now = now_ms();
    crate::patrol::ensure_duties(
        state.store.as_ref(),
        state.grids.as_deref(),
        &id,
        crate::patrol::today(now),
        true,
        now,
    )
    .await?;
    let previous = json!({
        "role": role_json(user.role),
        "team": user.team.as_ref().map(|t| team_json(catalog, t)),
        "scope": user.scope.to_string(),
    });
    let changed = User {
        role,
        team,
        scope,
        ..user
    };
    Ok(Json(json!({
        "assignment": assignment_json(catalog, &changed, state.grids.as_deref()),
        "previous": previous,
    })))
}

/// `GET /v1/ownership-rules`: the ownership rules the server routes with (the
/// operator's file or the built-in rules), labelled in Chinese and English. Any
/// signed-in user may read them.
pub(super) async fn ownership_rules(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    let catalog = state.sync.rules.catalog;
    let index = state.grids.as_deref();
    let rules: Vec<Value> = state
        .ownership
        .rules()
        .iter()
        .enumerate()
        .map(|(n, rule)| {
            json!({
                "rule": n + 1,
                "categories": patterns_json(&rule.categories, catalog),
                "area": rule.area.as_deref().map(|area| prefix_json(area, index)),
                "team": rule.team.as_ref().map(|t| team_json(catalog, t)),
                "dispatch": dispatch_json(rule.dispatch),
            })
        })
        .collect();
    let overrides: Vec<Value> = state
        .ownership
        .overrides()
        .iter()
        .map(|over| {
            let corners = |points: &[wangge_sync_core::geo::LonLat]| -> Value {
                points.iter().map(|p| json!([p.lon, p.lat])).collect()
            };
            let (shape, line, buffer_m, polygon) = match &over.shape {
                OverrideShape::Line { points, buffer_m } => {
                    ("line", corners(points), json!(buffer_m), Value::Null)
                }
                OverrideShape::Polygon { ring } => {
                    ("polygon", Value::Null, Value::Null, corners(ring))
                }
            };
            json!({
                "name": over.name,
                "categories": patterns_json(&over.categories, catalog),
                "team": team_json(catalog, &over.team),
                "dispatch": dispatch_json(over.dispatch),
                "shape": shape,
                "line": line,
                "buffer_m": buffer_m,
                "polygon": polygon,
            })
        })
        .collect();
    Json(json!({
        "precedence": "An override whose area contains the case's position wins for its categories (the first in file order). Otherwise the matching rule with the most specific category pattern (a category over a major class over a kind over *), then the narrowest area, then the first in file order. Otherwise the category's catalogue team, through the dispatcher's queue.",
        "rules": rules,
        "overrides": overrides,
    }))
}

fn unknown_role(role: &str) -> String {
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| **r != Role::Server)
        .map(|r| r.as_str())
        .collect();
    format!("role {role:?}: one of {}", roles.join(", "))
}

/// A team id that the catalogue declares.
fn catalogue_team(catalog: &Catalog, team: &str) -> Result<TeamId, String> {
    let id = TeamId::new(team).map_err(|e| format!("team: {e}"))?;
    match catalog.team(id.as_str()) {
        Some(_) => Ok(id),
        None => {
            let teams: Vec<&str> = catalog.teams().iter().map(|t| t.id.as_str()).collect();
            Err(format!(
                "team {team:?} is not in the catalogue: one of {}",
                teams.join(", ")
            ))
        }
    }
}

/// Checks a scope prefix as a real code of its level (the district's province and
/// city parts, the street number range, a non-zero community and sequence).
fn check_prefix(prefix: &str) -> Result<(), String> {
    match prefix.len() {
        0 => Ok(()),
        2 | 4 => {
            let province: u32 = prefix.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
            let digits = prefix.bytes().all(|b| b.is_ascii_digit());
            let city_zero = prefix.get(2..) == Some("00");
            if digits && (11..=82).contains(&province) && !city_zero {
                Ok(())
            } else {
                Err(format!(
                    "{prefix:?} is not a province (2 digits) or city (4 digits) code"
                ))
            }
        }
        6 => prefix
            .parse::<DistrictCode>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        9 => prefix
            .parse::<StreetCode>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        12 => prefix
            .parse::<CommunityCode>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        15 => prefix
            .parse::<GridCode>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => Err(format!("{prefix:?} is not a grid code prefix")),
    }
}

/// One posting: the user, role and team with their labels, the grids with the names
/// of their levels (when the grids are loaded).
fn assignment_json(catalog: &Catalog, user: &User, index: Option<&GridIndex>) -> Value {
    let grids: Vec<Value> = user
        .scope
        .prefixes()
        .iter()
        .map(|prefix| prefix_json(prefix, index))
        .collect();
    json!({
        "user": user.id,
        "display_name": user.display_name,
        "disabled": user.disabled,
        "role": role_json(user.role),
        "team": user.team.as_ref().map(|t| team_json(catalog, t)),
        "scope": user.scope.to_string(),
        "grids": grids,
    })
}

fn role_json(role: Role) -> Value {
    json!({ "code": role.as_str(), "name_zh": role.name_zh(), "name_en": role.name_en() })
}

fn team_json(catalog: &Catalog, team: &TeamId) -> Value {
    let known = catalog.team(team.as_str());
    json!({
        "code": team.as_str(),
        "name_zh": known.map(|t| t.name_zh.as_str()),
        "name_en": known.map(|t| t.name_en.as_str()),
    })
}

fn dispatch_json(mode: DispatchMode) -> Value {
    let (code, zh, en) = match mode {
        DispatchMode::Auto => ("auto", "自动派遣", "Dispatched at once by the server"),
        DispatchMode::Queue => ("queue", "待派遣队列", "The dispatcher's queue"),
    };
    json!({ "code": code, "name_zh": zh, "name_en": en })
}

/// A scope prefix or rule area: its code (`*` for everywhere), level and the names
/// of the units it lies in, from the grid index (`{}` without grids).
fn prefix_json(prefix: &str, index: Option<&GridIndex>) -> Value {
    let (level, level_zh) = match prefix.len() {
        0 | 4 => (Level::City.as_str(), Level::City.name_zh()),
        2 => ("province", "省"),
        6 => (Level::District.as_str(), Level::District.name_zh()),
        9 => (Level::Street.as_str(), Level::Street.name_zh()),
        12 => (Level::Community.as_str(), Level::Community.name_zh()),
        _ => (Level::Grid.as_str(), "单元网格"),
    };
    let mut names = Map::new();
    if let Some(index) = index {
        let hierarchy = index.hierarchy();
        let mut name = |key: &str, found: Option<&String>| {
            if let Some(found) = found {
                names.insert(key.to_owned(), Value::String(found.clone()));
            }
        };
        if let Some(district) = prefix.get(..6).and_then(|p| p.parse::<DistrictCode>().ok()) {
            name("district", hierarchy.districts.get(&district));
        }
        if let Some(street) = prefix.get(..9).and_then(|p| p.parse::<StreetCode>().ok()) {
            name("street", hierarchy.streets.get(&street));
        }
        if let Some(community) = prefix
            .get(..12)
            .and_then(|p| p.parse::<CommunityCode>().ok())
        {
            name("community", hierarchy.communities.get(&community));
        }
        if let Some(grid) = prefix.get(..15).and_then(|p| p.parse::<GridCode>().ok()) {
            let level3 = index.describe(grid).map(|d| d.level3_name);
            name("level3", level3.as_ref());
        }
    }
    json!({
        "code": if prefix.is_empty() { "*" } else { prefix },
        "level": level,
        "level_zh": level_zh,
        "names": names,
    })
}

fn patterns_json(patterns: &[CategoryPattern], catalog: &Catalog) -> Vec<Value> {
    patterns
        .iter()
        .map(|pattern| {
            let (kind, zh, en) = match pattern {
                CategoryPattern::Any => ("any", Some("全部类别"), Some("All categories")),
                CategoryPattern::Kind(kind) => ("kind", Some(kind.name_zh()), Some(kind.name_en())),
                CategoryPattern::Major(kind, major) => {
                    let class = catalog.major_class(*kind, *major);
                    (
                        "major_class",
                        class.map(|c| c.name_zh.as_str()),
                        class.map(|c| c.name_en.as_str()),
                    )
                }
                CategoryPattern::Category(code) => {
                    let category = catalog.get(code);
                    (
                        "category",
                        category.map(|c| c.name_zh.as_str()),
                        category.map(|c| c.name_en.as_str()),
                    )
                }
            };
            json!({ "pattern": pattern.to_string(), "level": kind, "name_zh": zh, "name_en": en })
        })
        .collect()
}
