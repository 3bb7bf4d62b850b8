//! Open311 GeoReport v2 (migration 0015): the client apps' API keys (stored as the
//! SHA-256 of the key; the migration says why that is enough) and the requests they
//! posted (token → case). Like the rest of the store, one SQL text serves both
//! databases (`impl_open311_store!`).

use super::StoreFuture;

/// A client app's API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    /// Key id (UUID v7), for `wangge apikey revoke`.
    pub id: String,
    /// Who the key is for (the app, the portal).
    pub name: String,
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// POST requests per minute; `None`: no limit.
    pub rate_per_minute: Option<i32>,
    /// Created at, ms.
    pub created_at: i64,
    /// Revoked at, ms: a revoked key is refused (403).
    pub revoked_at: Option<i64>,
}

/// A service request posted through Open311.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Open311Request {
    /// The token given to the client.
    pub token: String,
    /// The case it became (its `service_request_id`).
    pub case_id: String,
    /// The key that posted it.
    pub api_key_id: String,
    /// The photo URL the client sent (not fetched).
    pub media_url: Option<String>,
    /// Posted at, ms.
    pub created_at: i64,
}

/// Which cases `GET requests` lists (every source: the city's whole list, as the
/// large deployments publish it).
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    /// These case ids only (the other fields are then ignored, as the spec says).
    pub ids: Vec<String>,
    /// Any of these categories (none: all).
    pub categories: Vec<String>,
    /// `Some(true)`: closed or voided; `Some(false)`: the others; `None`: both.
    pub closed: Option<bool>,
    /// Reported at or after (ms).
    pub from: i64,
    /// Reported before (ms).
    pub to: i64,
    /// At most this many, newest report first.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// Storage of Open311 keys and requests.
pub trait Open311Store: Send + Sync {
    /// Adds a key; `Conflict` if its id or hash exists.
    fn api_key_add<'a>(&'a self, key: &'a ApiKey) -> StoreFuture<'a, ()>;
    /// Every key, oldest first.
    fn api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>>;
    /// The key whose hash is `key_hash` (revoked or not).
    fn api_key_by_hash<'a>(&'a self, key_hash: &'a str) -> StoreFuture<'a, Option<ApiKey>>;
    /// Revokes key `id` at `at` (kept if already revoked); false if there is none.
    fn api_key_revoke<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, bool>;
    /// Records a posted request.
    fn open311_request_add<'a>(&'a self, request: &'a Open311Request) -> StoreFuture<'a, ()>;
    /// The request a token was given for.
    fn open311_request_by_token<'a>(
        &'a self,
        token: &'a str,
    ) -> StoreFuture<'a, Option<Open311Request>>;
    /// The requests posted for these cases (those that came through Open311).
    fn open311_requests_of<'a>(
        &'a self,
        case_ids: &'a [String],
    ) -> StoreFuture<'a, Vec<Open311Request>>;
    /// The cases `query` selects (only those with a valid report).
    fn open311_cases<'a>(
        &'a self,
        query: &'a RequestQuery,
    ) -> StoreFuture<'a, Vec<super::cases::CaseRow>>;
}

/// Implements [`Open311Store`] for `$store` over `$db`.
macro_rules! impl_open311_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::open311::Open311Store for $store {
            fn api_key_add<'a>(
                &'a self,
                key: &'a $crate::store::open311::ApiKey,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let result = sqlx::query(
                        "INSERT INTO open311_api_keys (id, name, key_hash, rate_per_minute, created_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&key.id)
                    .bind(&key.name)
                    .bind(&key.key_hash)
                    .bind(key.rate_per_minute)
                    .bind(key.created_at)
                    .bind(key.revoked_at)
                    .execute(&self.pool)
                    .await;
                    $crate::store::inserted(result, "api key", &key.id)
                })
            }

            fn api_keys(
                &self,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::open311::ApiKey>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT id, name, key_hash, rate_per_minute, created_at, revoked_at
                         FROM open311_api_keys ORDER BY created_at, id",
                    )
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn api_key_by_hash<'a>(
                &'a self,
                key_hash: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::open311::ApiKey>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT id, name, key_hash, rate_per_minute, created_at, revoked_at
                         FROM open311_api_keys WHERE key_hash = $1",
                    )
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn api_key_revoke<'a>(
                &'a self,
                id: &'a str,
                at: i64,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE open311_api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                })
            }

            fn open311_request_add<'a>(
                &'a self,
                request: &'a $crate::store::open311::Open311Request,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let result = sqlx::query(
                        "INSERT INTO open311_requests (token, case_id, api_key_id, media_url, created_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&request.token)
                    .bind(&request.case_id)
                    .bind(&request.api_key_id)
                    .bind(&request.media_url)
                    .bind(request.created_at)
                    .execute(&self.pool)
                    .await;
                    $crate::store::inserted(result, "open311 request", &request.token)
                })
            }

            fn open311_request_by_token<'a>(
                &'a self,
                token: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::open311::Open311Request>>
            {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT token, case_id, api_key_id, media_url, created_at
                         FROM open311_requests WHERE token = $1",
                    )
                    .bind(token)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn open311_requests_of<'a>(
                &'a self,
                case_ids: &'a [String],
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::open311::Open311Request>>
            {
                Box::pin(async move {
                    if case_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT token, case_id, api_key_id, media_url, created_at
                         FROM open311_requests WHERE case_id IN (",
                    );
                    let mut ids = q.separated(", ");
                    for id in case_ids {
                        ids.push_bind(id.clone());
                    }
                    q.push(")");
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn open311_cases<'a>(
                &'a self,
                query: &'a $crate::store::open311::RequestQuery,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::cases::CaseRow>> {
                Box::pin(async move {
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT * FROM cases WHERE status IS NOT NULL AND reported_at IS NOT NULL",
                    );
                    if query.ids.is_empty() {
                        // On the `(reported_at)` index, newest first.
                        q.push(" AND reported_at >= ")
                            .push_bind(query.from)
                            .push(" AND reported_at < ")
                            .push_bind(query.to);
                        if !query.categories.is_empty() {
                            q.push(" AND category IN (");
                            let mut list = q.separated(", ");
                            for category in &query.categories {
                                list.push_bind(category.clone());
                            }
                            q.push(")");
                        }
                        match query.closed {
                            Some(true) => {
                                q.push(" AND status IN ('closed', 'voided')");
                            }
                            Some(false) => {
                                q.push(" AND status NOT IN ('closed', 'voided')");
                            }
                            None => {}
                        }
                    } else {
                        q.push(" AND id IN (");
                        let mut list = q.separated(", ");
                        for id in &query.ids {
                            list.push_bind(id.clone());
                        }
                        q.push(")");
                    }
                    q.push(" ORDER BY reported_at DESC, id LIMIT ")
                        .push_bind(i64::from(query.limit))
                        .push(" OFFSET ")
                        .push_bind(i64::from(query.offset));
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }
        }
    };
}

pub(crate) use impl_open311_store;
