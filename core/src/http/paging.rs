//! Lists: the `?limit=&after=` page query (cursor pagination by id), one page of a list
//! in the shape every list endpoint answers, and reading a list's query with problem+json
//! errors.

use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::ok;
use crate::app::{Caller, Core};
use crate::domain::Snapshot;
use crate::error::AppError;

/// `?limit=&after=`: at most `limit` items (1..=500, default 50) with an id above `after`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// Page size.
    pub(crate) limit: Option<usize>,
    /// Cursor: the last id of the previous page.
    pub(crate) after: Option<u64>,
}

/// A page query, or why it could not be read (answered as a problem by [`page_query`]).
pub(crate) type PageResult =
    Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>;

/// The `(id, view)` items of a list, in id order, borrowed from a snapshot.
pub(crate) type Items<'s> = Box<dyn Iterator<Item = (u64, Json)> + 's>;

/// A page of the items `items` picks from the caller's snapshot (`?limit=&after=`), as
/// the list endpoints answer it.
pub(crate) async fn list_page(
    core: &Core,
    caller: &Caller,
    query: PageResult,
    items: impl for<'s> FnOnce(&'s Snapshot) -> Items<'s>,
) -> Result<Response, AppError> {
    snapshot_page(core, caller, page_query(query)?, items).await
}

/// [`list_page`] for a list whose query has filters besides the page, read with
/// [`list_query`].
pub(crate) async fn snapshot_page(
    core: &Core,
    caller: &Caller,
    page: PageQuery,
    items: impl for<'s> FnOnce(&'s Snapshot) -> Items<'s>,
) -> Result<Response, AppError> {
    core.read(caller.tenant, |s| page.page(items(s)))
        .await?
        .map(ok)
}

/// Reads the query of a list endpoint with filters, with problem+json errors.
pub(crate) fn list_query<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, AppError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| AppError::invalid("query", e.body_text()))
}

/// The largest page.
pub(crate) const MAX_PAGE: usize = 500;

impl PageQuery {
    fn limit(self) -> Result<usize, AppError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(AppError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            )),
        }
    }

    /// The cursor and page size asked for: the page holds ids above the first, at most the
    /// second of them.
    pub(crate) fn window(&self) -> Result<(u64, usize), AppError> {
        Ok((self.after.unwrap_or(0), self.limit()?))
    }

    /// One page of `items` (id, view), which must be in increasing id order:
    /// `{"items": […], "next_after": <id> | null}`.
    pub(crate) fn page(
        self,
        items: impl IntoIterator<Item = (u64, Json)>,
    ) -> Result<Json, AppError> {
        let limit = self.limit()?;
        let after = self.after.unwrap_or(0);
        let mut page: Vec<(u64, Json)> = items
            .into_iter()
            .filter(|(id, _)| *id > after)
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more {
            page.last().map(|(id, _)| *id)
        } else {
            None
        };
        Ok(json!({
            "items": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "next_after": next,
        }))
    }
}

/// Reads the query of a list endpoint with problem+json errors.
pub(crate) fn page_query(
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<PageQuery, AppError> {
    list_query(query)
}
