//! Paged collection reads.
//!
//! [`Client::list`] returns a lazy stream: it GETs the first page, yields its records one by
//! one, and only when they are all consumed GETs `_links.next.href` — followed verbatim,
//! since ONTAP's next link already repeats every parameter. Pages may be short or empty
//! while a next link exists; the stream ends when a page has no next link. Only one page is
//! held in memory at a time.

use std::collections::VecDeque;

use futures_util::stream::{self, Stream};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::query::Query;

/// One page of a collection GET.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The records of this page (absent with `return_records=false`).
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    /// Number of records in this page (not the collection total).
    #[serde(default)]
    pub num_records: Option<u64>,
    /// `_links.next.href`: the path of the next page, if any.
    #[serde(default, rename = "_links", deserialize_with = "next_href")]
    pub next: Option<String>,
}

fn next_href<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Links {
        next: Option<Href>,
    }
    #[derive(Deserialize)]
    struct Href {
        href: String,
    }
    Ok(Option::<Links>::deserialize(d)?
        .and_then(|l| l.next)
        .map(|h| h.href))
}

/// Turns an href from ONTAP into a path relative to the base URL (an absolute URL keeps
/// only its path and query).
pub(crate) fn href_to_path(href: &str) -> String {
    if href.starts_with('/') {
        return href.to_owned();
    }
    match url::Url::parse(href) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => format!("/{href}"),
    }
}

struct PageState<T> {
    client: Client,
    next: Option<String>,
    buffer: VecDeque<T>,
}

impl Client {
    /// Fetches one page at `path_and_query` (relative to the base URL).
    pub async fn get_page<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<Page<T>> {
        self.get_json(path_and_query).await
    }

    /// Streams every record of the collection at `collection_path` matching `query`,
    /// fetching page by page. An invalid query yields one error and ends the stream.
    pub fn list<T>(
        &self,
        collection_path: &str,
        query: &Query,
    ) -> impl Stream<Item = Result<T>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        let first = query.append_to(collection_path).map_err(Error::from);
        let (next, first_err) = match first {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        let state = PageState {
            client: self.clone(),
            next,
            buffer: VecDeque::new(),
        };
        let err_stream = stream::iter(first_err.map(Err));
        let records = stream::unfold(state, |mut st| async move {
            loop {
                if let Some(item) = st.buffer.pop_front() {
                    return Some((Ok(item), st));
                }
                let path = st.next.take()?;
                match st.client.get_page::<T>(&path).await {
                    Ok(page) => {
                        st.next = page.next.as_deref().map(href_to_path);
                        st.buffer = page.records.into();
                    }
                    Err(e) => return Some((Err(e), st)),
                }
            }
        });
        futures_util::StreamExt::chain(err_stream, records)
    }

    /// Collects the whole collection into a `Vec` (see [`Client::list`]).
    pub async fn list_all<T>(&self, collection_path: &str, query: &Query) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        use futures_util::TryStreamExt;
        self.list(collection_path, query).try_collect().await
    }

    /// Counts the records matching `query` with `return_records=false`, summing
    /// `num_records` over all pages (ONTAP's `num_records` counts one page only).
    pub async fn count(&self, collection_path: &str, query: &Query) -> Result<u64> {
        let query = query.clone().return_records(false);
        let mut next = Some(query.append_to(collection_path)?);
        let mut total = 0u64;
        while let Some(path) = next {
            let page: Page<IgnoredAny> = self.get_page(&path).await?;
            total += page.num_records.unwrap_or(page.records.len() as u64);
            next = page.next.as_deref().map(href_to_path);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_with_next_link() {
        let body = r#"{"records":[{"name":"a"}],"num_records":1,
            "_links":{"self":{"href":"/api/storage/aggregates"},
                      "next":{"href":"/api/storage/aggregates?start.aggregate=aggr25&max_records=25"}}}"#;
        let page: Page<serde_json::Value> = serde_json::from_str(body).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.num_records, Some(1));
        assert_eq!(
            page.next.as_deref(),
            Some("/api/storage/aggregates?start.aggregate=aggr25&max_records=25")
        );
    }

    #[test]
    fn raw_volume_collection_fixture() {
        let body = r#"{
          "records": [
            {"uuid": "c68bdca8-d090-11e9-bb29-005056bb7f42", "name": "vs0_root",
             "_links": {"self": {"href": "/api/storage/volumes/c68bdca8-d090-11e9-bb29-005056bb7f42"}}},
            {"uuid": "ed3b6ebf-d48e-11e9-bb29-005056bb7f42", "name": "vs1_root",
             "_links": {"self": {"href": "/api/storage/volumes/ed3b6ebf-d48e-11e9-bb29-005056bb7f42"}}}
          ],
          "num_records": 2,
          "_links": {"self": {"href": "/api/storage/volumes"}}
        }"#;
        #[derive(Deserialize)]
        struct V {
            name: String,
        }
        let page: Page<V> = serde_json::from_str(body).unwrap();
        let names: Vec<&str> = page.records.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["vs0_root", "vs1_root"]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn count_only_page() {
        let page: Page<IgnoredAny> = serde_json::from_str(r#"{"num_records":7}"#).unwrap();
        assert_eq!(page.num_records, Some(7));
        assert!(page.records.is_empty());
    }

    #[test]
    fn hrefs() {
        assert_eq!(href_to_path("/api/a?b=c"), "/api/a?b=c");
        assert_eq!(href_to_path("https://h:1/api/a?b=c%20d"), "/api/a?b=c%20d");
        assert_eq!(href_to_path("https://h/api/a"), "/api/a");
    }
}
